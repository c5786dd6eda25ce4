#include "query.h"
#include "clients.h"
#include "dns.h"
#include "forward.h"
#include "records.h"

/* One query from a client. C is its TCP connection, or NULL for UDP (then CLIENT is its address). */
void handle_query(uint8_t *pkt, size_t len, const addr_t *client, socklen_t client_len, struct tcp_conn *c, int64_t now)
{
	struct query q;
	if (len < DNS_HEADER || (pkt[2] & 0x80))
		return; /* a response sent to us: never answer one, or two resolvers could ping-pong */
	if (parse_message(pkt, len, &q, 1) < 0) return;
	size_t limit = c ? 65535 : q.limit;
	size_t n;
	int opcode = (q.flags >> 11) & 0x0f;
	if (opcode != 0) {
		n = build_reply(pkt, &q, limit, RCODE_NOTIMP, 0, NULL);
	} else if (len > MAX_QUERY) {
		n = build_reply(pkt, &q, limit, RCODE_FORMERR, 0, NULL);
	} else {
		struct record *r = q.local ? record_find(q.name, q.namelen) : NULL;
		if (r) {
			/* a known name: its A records; any other type exists but is empty (NODATA) */
			int a = q.qtype == TYPE_A && q.qclass == CLASS_IN;
			n = build_reply(pkt, &q, limit, 0, 1, a ? r : NULL);
		} else if (nups) {
			forward(pkt, len, &q, client, client_len, c, now);
			return;
		} else {
			n = build_reply(pkt, &q, limit, RCODE_NXDOMAIN, 0, NULL);
		}
	}
	if (c)
		tcp_send(c, TXP, n);
	else
		send_udp(TXP, n, client, client_len);
}
