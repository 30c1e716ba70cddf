/* Private to agent/: this node's DNS responder for the containers on skiff
 * networks, over UDP on the agent's libuv loop; messages are parsed and
 * built with ldns. The names come from a table (agent/dns_table.h).
 *
 * How queries reach it (verified with dockerd 20.10.24 on the lab, see
 * tests/lab/net-proto-dns.sh): a container on a user-defined Docker network
 * (also an --internal one) asks Docker's embedded resolver at 127.0.0.11,
 * which answers the names of containers on that Docker network itself and
 * forwards everything else to the servers of the container's
 * HostConfig.Dns. The agent sets Dns to the node's gateway address of the
 * container's network (`docker run --dns GW`) and listens there; the
 * forwarded query leaves from the container's own network namespace, with
 * the container's address on that network as its source (a second
 * container on the same network, whose address the table does not know,
 * is refused), which is how the asker is known.
 *
 * Answers (sk_dns_answer): a known name asked with type A (or ANY) gets its
 * addresses as A records, rotated by the caller's counter so that clients
 * taking the first address spread; any other type for a known name gets
 * NOERROR with no answer (AAAA included); an unknown name NXDOMAIN; a
 * source that is no local task's address REFUSED (there is no upstream
 * server behind this one). Records carry TTL 0, so a change is seen by the
 * next query. A reply fits 512 bytes, or the EDNS size the query offers up
 * to 1232: addresses beyond that are left out (without TC: no TCP is
 * served). Opcodes other than QUERY get NOTIMP, a query without exactly one
 * question FORMERR; bytes that do not parse as a DNS query, and responses,
 * are dropped without a reply.
 *
 * The server and everything it owns belong to the loop it was made on;
 * call it on that loop's thread only. Its one callback is close's. */
#ifndef SKIFF_AGENT_DNS_H
#define SKIFF_AGENT_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/dns_table.h"
#include "skiff/err.h"

/* The largest reply built (the EDNS payload size this server offers). */
#define SK_DNS_MAX_REPLY 1232

/* Builds the reply to one query from `asker` into out (SK_DNS_MAX_REPLY
 * bytes). Returns false when no reply is to be sent. Pure: no I/O, no
 * state but the table (which may be NULL: nothing is known yet). */
bool sk_dns_answer(const struct sk_dns_table *t, struct in_addr asker,
                   const uint8_t *query, size_t len, unsigned rotate,
                   uint8_t *out, size_t *out_len);

/* ---- the server ---- */

struct sk_dns_server;

struct sk_dns_stats {
    uint64_t queries; /* datagrams received */
    uint64_t replies; /* replies sent */
    uint64_t dropped; /* no reply: unparsable, or the send would block */
};

/* A server on `loop` that will listen on `port` (53 by default; tests pick
 * another) of the addresses given to sk_dns_server_listen. */
struct sk_dns_server *sk_dns_server_new(uv_loop_t *loop, uint16_t port);

/* Listens on exactly these addresses from now on: binds the new ones,
 * closes the ones no longer given. A socket is bound with IP_FREEBIND, so
 * an address may be listed before its bridge has it. On an error the
 * addresses bound so far stay, and a later call retries the rest. */
enum sk_rc sk_dns_server_listen(struct sk_dns_server *s,
                                const struct in_addr *addrs, size_t n,
                                struct sk_err *err);

/* Answers from `t` from now on; the server owns t and frees the table it
 * held before. */
void sk_dns_server_set_table(struct sk_dns_server *s, struct sk_dns_table *t);

void sk_dns_server_stats(const struct sk_dns_server *s,
                         struct sk_dns_stats *out);

/* Closes every socket and frees the server and its table; cb runs once
 * after that, always from the loop (never inside this call). */
void sk_dns_server_close(struct sk_dns_server *s, void (*cb)(void *ctx),
                         void *ctx);

#endif
