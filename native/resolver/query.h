/* One query from a client: answered from the records, forwarded, or refused. */
#ifndef TSS_QUERY_H
#define TSS_QUERY_H
#include "resolver.h"
#include <stddef.h>
#include <stdint.h>

struct tcp_conn;

/* One query from a client. C is its TCP connection, or NULL for UDP (then CLIENT is its address). */
void handle_query(uint8_t *pkt, size_t len, const addr_t *client, socklen_t client_len, struct tcp_conn *c,
                  int64_t now);
#endif
