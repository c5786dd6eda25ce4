/**
 * gRPC client constructors from a protobufjs JSON descriptor instead of .proto text: the bundled CLI
 * carries the descriptor (made at build time by scripts/build-cli.mjs) so that starting it parses no .proto
 * files and loads neither @grpc/proto-loader nor protobufjs's parser. Messages convert exactly as
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

const roots = new WeakMap<object, protobuf.Root>();

/** The client constructor of one service (e.g. "tsswarm.node.v1.NodeAPI") in a descriptor's root. */
export function clientFromDescriptor(descriptor: protobuf.INamespace, serviceName: string): grpc.ServiceClientConstructor {
  let root = roots.get(descriptor);
  if (!root) roots.set(descriptor, (root = protobuf.Root.fromJSON(descriptor)));
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
