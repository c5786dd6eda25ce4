/**
 * gRPC client constructors from a protobufjs JSON descriptor instead of .proto text: the bundled CLI
 * carries the descriptor and the message codecs (made at build time by scripts/build-cli.mjs) so that
 * starting it parses no .proto files, generates no code and loads neither @grpc/proto-loader nor
 * protobufjs's parser. Messages convert exactly as
 * src/api/proto.ts's proto-loader options do (camelCase fields, plain numbers, enum names, defaults).
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs/light.js';

/** Same conversion as LOADER_OPTIONS in proto.ts. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: true };

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`failed to serialize message: expected an object with ${type.name} structure, got an array`);
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

/**
 * One message's codecs as source in the bundle: each a factory that takes the scope protobufjs's
 * Type#setup gives the function it generates (the same names, the same order).
 */
export interface MessageCodecs {
  ctor(): Function;
  encode(writer: unknown, types: unknown[], util: unknown): Function;
  decode(reader: unknown, types: unknown[], util: unknown, ctor: Function): Function;
  fromObject(types: unknown[], util: unknown, ctor: Function): Function;
  toObject(types: unknown[], util: unknown): Function;
}

/** What the bundle carries per .proto file: the JSON descriptor and every message's codecs. */
export interface BundledProto {
  descriptor: string;
  codecs: Record<string, MessageCodecs>;
}

/** Type#setup without code generation: the same functions, from the bundle's source. */
function setupFrom(type: protobuf.Type, codecs: MessageCodecs): void {
  const generate = protobuf.Type.prototype.setup;
  type.setup = function setup(this: protobuf.Type) {
    const types = this.fieldsArray.map((f) => f.resolve().resolvedType);
    const ctor = codecs.ctor();
    this.ctor = ctor as protobuf.Constructor<object>;
    this.encode = codecs.encode(protobuf.Writer, types, protobuf.util) as protobuf.Type['encode'];
    this.decode = codecs.decode(protobuf.Reader, types, protobuf.util, ctor) as protobuf.Type['decode'];
    this.fromObject = codecs.fromObject(types, protobuf.util, ctor) as protobuf.Type['fromObject'];
    this.toObject = codecs.toObject(types, protobuf.util) as protobuf.Type['toObject'];
    // Not in the bundle: nothing here verifies; generated as usual should anything ever call it.
    this.verify = (message) => generate.call(this).verify(message);
    return this;
  };
}

const roots = new WeakMap<object, protobuf.Root>();

/** The client constructor of one service (e.g. "tsswarm.node.v1.NodeAPI") in a bundled .proto. */
export function clientFromBundledProto(proto: BundledProto, serviceName: string): grpc.ServiceClientConstructor {
  let root = roots.get(proto);
  if (!root) {
    root = protobuf.Root.fromJSON(JSON.parse(proto.descriptor) as protobuf.INamespace);
    for (const [name, codecs] of Object.entries(proto.codecs)) setupFrom(root.lookupType(name), codecs);
    roots.set(proto, root);
  }
  const service = root.lookupService(serviceName);
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    definition[method.name] = {
      path: `/${serviceName}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      // As proto-loader: the client also answers to the method's lowerCamelCase name.
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return grpc.makeGenericClientConstructor(definition, serviceName);
}
