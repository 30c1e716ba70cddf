/* The DNS responder: the table's resolution (agent/dns_table.c), the
 * message path with queries built and answers parsed by ldns, and the UDP
 * server on a loop over loopback addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/dns.h"
#include "agent/dns_table.h"
#include "support.h"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

/* Network A: api (vip 10.0.1.100, tasks .5 .6 .7, alias "backend"),
 * db (dnsrr, tasks .8 .9), idle (dnsrr, no task).
 * Network B: web (vip 10.0.2.100, task 10.0.2.5), api (vip 10.0.2.101).
 * Local tasks: client-a on A only (10.0.1.20), client-b on B only
 * (10.0.2.20), client-ab on both (10.0.1.21, 10.0.2.21). */
static struct in_addr api_tasks[3], db_tasks[2], web_tasks[1];

static struct sk_dns_table *sample_table(void)
{
    api_tasks[0] = ip("10.0.1.5");
    api_tasks[1] = ip("10.0.1.6");
    api_tasks[2] = ip("10.0.1.7");
    db_tasks[0] = ip("10.0.1.8");
    db_tasks[1] = ip("10.0.1.9");
    web_tasks[0] = ip("10.0.2.5");
    static const char *const api_aliases[] = {"backend"};
    struct sk_dns_service svcs[] = {
        {.network = "A",
         .name = "api",
         .aliases = api_aliases,
         .n_aliases = 1,
         .mode = SK_DNS_VIP,
         .vip = ip("10.0.1.100"),
         .tasks = api_tasks,
         .n_tasks = 3},
        {.network = "A",
         .name = "DB",
         .mode = SK_DNS_DNSRR,
         .tasks = db_tasks,
         .n_tasks = 2},
        {.network = "A", .name = "idle", .mode = SK_DNS_DNSRR},
        {.network = "B",
         .name = "web",
         .mode = SK_DNS_VIP,
         .vip = ip("10.0.2.100"),
         .tasks = web_tasks,
         .n_tasks = 1},
        {.network = "B",
         .name = "api",
         .mode = SK_DNS_VIP,
         .vip = ip("10.0.2.101")},
    };
    struct sk_dns_endpoint eps[] = {
        {.addr = ip("10.0.1.20"), .network = "A", .task = "client-a"},
        {.addr = ip("10.0.2.20"), .network = "B", .task = "client-b"},
        {.addr = ip("10.0.1.21"), .network = "A", .task = "client-ab"},
        {.addr = ip("10.0.2.21"), .network = "B", .task = "client-ab"},
        {.addr = ip("127.0.0.3"), .network = "A", .task = "loopback"},
    };
    struct sk_dns_table *t = NULL;
    struct sk_err err = {0};
    if (sk_dns_table_new(svcs, sizeof svcs / sizeof svcs[0], eps,
                         sizeof eps / sizeof eps[0], &t, &err) != SK_OK)
        fail_msg("table: %s", err.msg);
    return t;
}

/* Resolves and returns the addresses as "a,b,c" ("" for none, "NX" for no
 * such name, "REFUSED" for an unknown asker). */
static const char *resolve(const struct sk_dns_table *t, const char *asker,
                           const char *name)
{
    static char out[256];
    const struct in_addr *addrs;
    size_t n;
    switch (sk_dns_resolve(t, ip(asker), name, &addrs, &n)) {
    case SK_DNS_UNKNOWN_ASKER:
        return "REFUSED";
    case SK_DNS_NO_SUCH_NAME:
        return "NX";
    case SK_DNS_FOUND:
        break;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addrs[i], b, sizeof b);
        if (i)
            strcat(out, ",");
        strcat(out, b);
    }
    return out;
}

static void table_resolution(void **state)
{
    struct sk_dns_table *t = sample_table();
    const char *a = "10.0.1.20", *b = "10.0.2.20";
    assert_string_equal(resolve(t, a, "api"), "10.0.1.100");
    assert_string_equal(resolve(t, a, "api."), "10.0.1.100");
    assert_string_equal(resolve(t, a, "API."), "10.0.1.100");
    assert_string_equal(resolve(t, a, "tasks.api"),
                        "10.0.1.5,10.0.1.6,10.0.1.7");
    assert_string_equal(resolve(t, a, "Tasks.Api."),
                        "10.0.1.5,10.0.1.6,10.0.1.7");
    assert_string_equal(resolve(t, a, "backend"), "10.0.1.100");
    assert_string_equal(resolve(t, a, "tasks.backend"),
                        "10.0.1.5,10.0.1.6,10.0.1.7");
    /* dnsrr: the name gives the tasks; a name given in capitals matches. */
    assert_string_equal(resolve(t, a, "db"), "10.0.1.8,10.0.1.9");
    assert_string_equal(resolve(t, a, "tasks.db"), "10.0.1.8,10.0.1.9");
    /* Known, with nothing running. */
    assert_string_equal(resolve(t, a, "idle"), "");
    assert_string_equal(resolve(t, a, "tasks.idle"), "");
    /* Unknown names. */
    assert_string_equal(resolve(t, a, "nope"), "NX");
    assert_string_equal(resolve(t, a, "tasks."), "NX");
    assert_string_equal(resolve(t, a, "tasks"), "NX");
    assert_string_equal(resolve(t, a, "api.example.com"), "NX");
    assert_string_equal(resolve(t, a, ""), "NX");
    assert_string_equal(resolve(t, a, "."), "NX");
    assert_string_equal(resolve(t, a, "web"), "NX"); /* only on B */
    /* B sees its own api and web, not A's db. */
    assert_string_equal(resolve(t, b, "api"), "10.0.2.101");
    assert_string_equal(resolve(t, b, "web"), "10.0.2.100");
    assert_string_equal(resolve(t, b, "db"), "NX");
    /* A task on A and B: its own network first, then the other. */
    assert_string_equal(resolve(t, "10.0.1.21", "api"), "10.0.1.100");
    assert_string_equal(resolve(t, "10.0.2.21", "api"), "10.0.2.101");
    assert_string_equal(resolve(t, "10.0.2.21", "db"), "10.0.1.8,10.0.1.9");
    assert_string_equal(resolve(t, "10.0.1.21", "web"), "10.0.2.100");
    /* Not a local task's address: nothing at all. */
    assert_string_equal(resolve(t, "10.0.1.5", "api"), "REFUSED");
    assert_string_equal(resolve(t, "172.18.1.2", "api"), "REFUSED");
    /* A name longer than DNS allows. */
    char long_name[400];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_string_equal(resolve(t, a, long_name), "NX");
    sk_dns_table_free(t);
}

static void table_checks(void **state)
{
    struct sk_dns_table *t = NULL;
    struct sk_err err = {0};
    struct sk_dns_service bad[] = {{.network = "A", .name = "no spaces"}};
    assert_int_equal(sk_dns_table_new(bad, 1, NULL, 0, &t, &err), SK_EINVAL);
    assert_string_equal(err.msg,
                        "DNS: service name \"no spaces\" is not a DNS name");
    static const char *const aliases[] = {"ok", "a..b"};
    struct sk_dns_service bad_alias[] = {
        {.network = "A", .name = "web", .aliases = aliases, .n_aliases = 2}};
    assert_int_equal(sk_dns_table_new(bad_alias, 1, NULL, 0, &t, &err),
                     SK_EINVAL);
    assert_string_equal(
        err.msg, "DNS: service \"web\": alias \"a..b\" is not a DNS name");
    struct sk_dns_endpoint twice[] = {
        {.addr = ip("10.0.1.2"), .network = "A", .task = "t1"},
        {.addr = ip("10.0.1.2"), .network = "B", .task = "t2"}};
    assert_int_equal(sk_dns_table_new(NULL, 0, twice, 2, &t, &err), SK_EINVAL);
    assert_string_equal(err.msg, "DNS: task address 10.0.1.2 listed twice");
    assert_null(t);
    /* An empty table is a table. */
    assert_int_equal(sk_dns_table_new(NULL, 0, NULL, 0, &t, &err), SK_OK);
    assert_string_equal(resolve(t, "10.0.1.2", "api"), "REFUSED");
    sk_dns_table_free(t);
}

/* ---- the message path ---- */

static size_t make_query(const char *name, ldns_rr_type type, uint16_t id,
                         uint16_t edns_size, uint8_t *out)
{
    ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type,
                                     LDNS_RR_CLASS_IN, LDNS_RD);
    assert_non_null(q);
    ldns_pkt_set_id(q, id);
    if (edns_size)
        ldns_pkt_set_edns_udp_size(q, edns_size);
    uint8_t *wire = NULL;
    size_t size = 0;
    assert_int_equal(ldns_pkt2wire(&wire, q, &size), LDNS_STATUS_OK);
    memcpy(out, wire, size);
    free(wire);
    ldns_pkt_free(q);
    return size;
}

/* Runs the handler and parses its reply. */
static ldns_pkt *ask(const struct sk_dns_table *t, const char *asker,
                     const uint8_t *query, size_t len, unsigned rotate,
                     size_t *out_size)
{
    uint8_t reply[SK_DNS_MAX_REPLY];
    size_t rlen = 0;
    if (!sk_dns_answer(t, ip(asker), query, len, rotate, reply, &rlen))
        return NULL;
    assert_true(rlen <= SK_DNS_MAX_REPLY);
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, reply, rlen), LDNS_STATUS_OK);
    if (out_size)
        *out_size = rlen;
    return r;
}

static ldns_pkt *ask_name(const struct sk_dns_table *t, const char *asker,
                          const char *name, ldns_rr_type type, unsigned rotate)
{
    uint8_t q[512];
    size_t len = make_query(name, type, 0x1234, 0, q);
    ldns_pkt *r = ask(t, asker, q, len, rotate, NULL);
    assert_non_null(r);
    assert_int_equal(ldns_pkt_id(r), 0x1234);
    assert_true(ldns_pkt_qr(r));
    assert_true(ldns_pkt_aa(r));
    assert_true(ldns_pkt_rd(r));
    assert_false(ldns_pkt_ra(r));
    assert_int_equal(ldns_pkt_qdcount(r), 1);
    return r;
}

/* The A records of r as "a,b,c", each checked for owner and TTL 0. */
static const char *answers(ldns_pkt *r, const char *owner)
{
    static char out[2048];
    out[0] = '\0';
    ldns_rr_list *an = ldns_pkt_answer(r);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
        assert_int_equal(ldns_rr_ttl(rr), 0);
        char *o = ldns_rdf2str(ldns_rr_owner(rr));
        assert_string_equal(o, owner);
        free(o);
        char b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, ldns_rdf_data(ldns_rr_rdf(rr, 0)), b, sizeof b);
        if (i)
            strcat(out, ",");
        strcat(out, b);
    }
    return out;
}

static void message_answers(void **state)
{
    struct sk_dns_table *t = sample_table();
    const char *a = "10.0.1.20";
    ldns_pkt *r = ask_name(t, a, "api.", LDNS_RR_TYPE_A, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_string_equal(answers(r, "api."), "10.0.1.100");
    ldns_pkt_free(r);

    /* The question's spelling is kept in the answer. */
    r = ask_name(t, a, "TASKS.api", LDNS_RR_TYPE_A, 0);
    assert_string_equal(answers(r, "TASKS.api."), "10.0.1.5,10.0.1.6,10.0.1.7");
    ldns_pkt_free(r);
    /* Rotated by the caller's counter. */
    r = ask_name(t, a, "tasks.api", LDNS_RR_TYPE_A, 4);
    assert_string_equal(answers(r, "tasks.api."), "10.0.1.6,10.0.1.7,10.0.1.5");
    ldns_pkt_free(r);

    /* AAAA (or MX) for a known name: no data, no error. */
    r = ask_name(t, a, "api", LDNS_RR_TYPE_AAAA, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    r = ask_name(t, a, "db", LDNS_RR_TYPE_MX, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    /* ANY gives the A records. */
    r = ask_name(t, a, "db", LDNS_RR_TYPE_ANY, 0);
    assert_string_equal(answers(r, "db."), "10.0.1.8,10.0.1.9");
    ldns_pkt_free(r);
    /* A known name with nothing running. */
    r = ask_name(t, a, "idle", LDNS_RR_TYPE_A, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);

    /* Unknown names, also AAAA. */
    r = ask_name(t, a, "www.example.com", LDNS_RR_TYPE_A, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    r = ask_name(t, a, "web", LDNS_RR_TYPE_AAAA, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(r);
    /* From an address that is no local task's. */
    r = ask_name(t, "10.0.1.5", "api", LDNS_RR_TYPE_A, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);
    /* Before any table. */
    r = ask_name(NULL, a, "api", LDNS_RR_TYPE_A, 0);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);
    sk_dns_table_free(t);
}

static void message_size_limits(void **state)
{
    /* 100 tasks: 512 bytes hold 30 A records after the question; an EDNS
     * query offering 4096 gets up to 1232 bytes. */
    static struct in_addr many[100];
    for (int i = 0; i < 100; i++)
        many[i].s_addr = htonl(0x0a000300 + (uint32_t)i + 1);
    struct sk_dns_service svc = {.network = "A",
                                 .name = "big",
                                 .mode = SK_DNS_DNSRR,
                                 .tasks = many,
                                 .n_tasks = 100};
    struct sk_dns_endpoint ep = {
        .addr = ip("10.0.3.200"), .network = "A", .task = "t"};
    struct sk_dns_table *t = NULL;
    assert_int_equal(sk_dns_table_new(&svc, 1, &ep, 1, &t, NULL), SK_OK);

    uint8_t q[512];
    size_t size = 0;
    size_t len = make_query("big.", LDNS_RR_TYPE_A, 7, 0, q);
    ldns_pkt *r = ask(t, "10.0.3.200", q, len, 0, &size);
    assert_non_null(r);
    assert_true(size <= 512);
    assert_int_equal(ldns_pkt_ancount(r), (512 - 12 - 9) / 16);
    assert_false(ldns_pkt_tc(r));
    ldns_pkt_free(r);

    len = make_query("big.", LDNS_RR_TYPE_A, 7, 4096, q);
    r = ask(t, "10.0.3.200", q, len, 0, &size);
    assert_non_null(r);
    assert_true(size <= SK_DNS_MAX_REPLY);
    assert_true(ldns_pkt_ancount(r) > 60);
    assert_true(ldns_pkt_edns(r));
    assert_int_equal(ldns_pkt_edns_udp_size(r), SK_DNS_MAX_REPLY);
    ldns_pkt_free(r);

    /* EDNS offering less than 512 still gets 512. */
    len = make_query("big.", LDNS_RR_TYPE_A, 7, 100, q);
    r = ask(t, "10.0.3.200", q, len, 0, &size);
    assert_true(size <= 512 && size > 400);
    ldns_pkt_free(r);
    sk_dns_table_free(t);
}

static void message_bad_input(void **state)
{
    struct sk_dns_table *t = sample_table();
    const char *a = "10.0.1.20";
    uint8_t q[512];
    size_t len = make_query("api.", LDNS_RR_TYPE_A, 99, 0, q);

    /* Too short, truncated, garbage: dropped. */
    assert_null(ask(t, a, q, 0, 0, NULL));
    assert_null(ask(t, a, q, 11, 0, NULL));
    assert_null(ask(t, a, q, len - 1, 0, NULL));
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    assert_null(ask(t, a, junk, sizeof junk, 0, NULL));

    /* A response is never answered (no loops between servers). */
    uint8_t resp[512];
    memcpy(resp, q, len);
    resp[2] |= 0x80;
    assert_null(ask(t, a, resp, len, 0, NULL));

    /* No question: FORMERR. */
    ldns_pkt *empty = ldns_pkt_new();
    ldns_pkt_set_id(empty, 5);
    uint8_t *wire = NULL;
    size_t wlen = 0;
    assert_int_equal(ldns_pkt2wire(&wire, empty, &wlen), LDNS_STATUS_OK);
    ldns_pkt_free(empty);
    ldns_pkt *r = ask(t, a, wire, wlen, 0, NULL);
    free(wire);
    assert_non_null(r);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
    assert_int_equal(ldns_pkt_id(r), 5);
    ldns_pkt_free(r);

    /* Another opcode: NOTIMP. */
    uint8_t status[512];
    memcpy(status, q, len);
    status[2] = (uint8_t)((status[2] & 0x87) | (LDNS_PACKET_STATUS << 3));
    r = ask(t, a, status, len, 0, NULL);
    assert_non_null(r);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
    ldns_pkt_free(r);

    /* Class CHAOS: refused. */
    ldns_pkt *ch = ldns_pkt_query_new(ldns_dname_new_frm_str("api."),
                                      LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, 0);
    assert_int_equal(ldns_pkt2wire(&wire, ch, &wlen), LDNS_STATUS_OK);
    ldns_pkt_free(ch);
    r = ask(t, a, wire, wlen, 0, NULL);
    free(wire);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);
    sk_dns_table_free(t);
}

/* ---- the server on a loop ---- */

static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr = ip("127.0.0.1")};
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

struct client {
    int fd;
    uint8_t buf[2048];
    ssize_t got;
};

static bool client_got(void *ctx)
{
    struct client *c = ctx;
    c->got = recv(c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT);
    return c->got > 0;
}

/* Sends a query for name from the client to server:port; returns the
 * parsed reply or NULL if none came within 1 s. */
static ldns_pkt *query_server(uv_loop_t *loop, struct client *c,
                              const char *server, uint16_t port,
                              const char *name)
{
    uint8_t q[512];
    size_t len = make_query(name, LDNS_RR_TYPE_A, 77, 0, q);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip(server)};
    assert_int_equal(
        sendto(c->fd, q, len, 0, (struct sockaddr *)&to, sizeof to),
        (ssize_t)len);
    if (!sk_test_run_until(loop, client_got, c, 1000))
        return NULL;
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, c->buf, (size_t)c->got), LDNS_STATUS_OK);
    return r;
}

static void closed_cb(void *ctx)
{
    *(bool *)ctx = true;
}

static void server_on_loopback(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint16_t port = free_udp_port();
    struct sk_dns_server *s = sk_dns_server_new(&loop, port);
    struct in_addr addrs[] = {ip("127.0.0.1"), ip("127.0.0.2"),
                              /* on no device: IP_FREEBIND binds it */
                              ip("10.255.255.1")};
    struct sk_err err = {0};
    if (sk_dns_server_listen(s, addrs, 3, &err) != SK_OK)
        fail_msg("listen: %s", err.msg);
    /* Listening again on the same addresses changes nothing. */
    assert_int_equal(sk_dns_server_listen(s, addrs, 3, &err), SK_OK);

    /* The asker: 127.0.0.3, a task on network A in the sample table. */
    struct client c = {.fd = socket(AF_INET, SOCK_DGRAM, 0)};
    struct sockaddr_in me = {.sin_family = AF_INET,
                             .sin_addr = ip("127.0.0.3")};
    assert_int_equal(bind(c.fd, (struct sockaddr *)&me, sizeof me), 0);

    /* No table yet: refused. */
    ldns_pkt *r = query_server(&loop, &c, "127.0.0.1", port, "api.");
    assert_non_null(r);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);

    sk_dns_server_set_table(s, sample_table());
    r = query_server(&loop, &c, "127.0.0.1", port, "api.");
    assert_non_null(r);
    assert_int_equal(ldns_pkt_id(r), 77);
    assert_string_equal(answers(r, "api."), "10.0.1.100");
    ldns_pkt_free(r);
    r = query_server(&loop, &c, "127.0.0.2", port, "tasks.db.");
    assert_non_null(r);
    assert_int_equal(ldns_pkt_ancount(r), 2);
    ldns_pkt_free(r);

    /* A new table replaces the old one at once. */
    struct sk_dns_service api = {.network = "A",
                                 .name = "api",
                                 .mode = SK_DNS_VIP,
                                 .vip = ip("10.0.1.111")};
    struct sk_dns_endpoint ep = {
        .addr = ip("127.0.0.3"), .network = "A", .task = "loopback"};
    struct sk_dns_table *t2 = NULL;
    assert_int_equal(sk_dns_table_new(&api, 1, &ep, 1, &t2, &err), SK_OK);
    sk_dns_server_set_table(s, t2);
    r = query_server(&loop, &c, "127.0.0.1", port, "api.");
    assert_string_equal(answers(r, "api."), "10.0.1.111");
    ldns_pkt_free(r);

    /* Garbage gets no reply; the server keeps answering. */
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr = ip("127.0.0.1")};
    assert_int_equal(
        sendto(c.fd, "xyz", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
    sk_test_run_for(&loop, 50);
    assert_false(client_got(&c));

    /* 127.0.0.1 no longer listened on: no answer there, still on .2. */
    assert_int_equal(sk_dns_server_listen(s, &addrs[1], 1, &err), SK_OK);
    sk_test_run_for(&loop, 20);
    assert_null(query_server(&loop, &c, "127.0.0.1", port, "api."));
    r = query_server(&loop, &c, "127.0.0.2", port, "api.");
    assert_non_null(r);
    ldns_pkt_free(r);

    struct sk_dns_stats st;
    sk_dns_server_stats(s, &st);
    assert_int_equal(st.queries, 6);
    assert_int_equal(st.replies, 5);
    assert_int_equal(st.dropped, 1);

    /* Closing: the callback runs from the loop, not inside the call. */
    bool closed = false;
    sk_dns_server_close(s, closed_cb, &closed);
    assert_false(closed);
    close(c.fd);
    sk_test_loop_close(&loop);
    assert_true(closed);
}

static void server_closes_without_sockets(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sk_dns_server *s = sk_dns_server_new(&loop, 53);
    bool closed = false;
    sk_dns_server_close(s, closed_cb, &closed);
    assert_false(closed);
    sk_test_loop_close(&loop);
    assert_true(closed);
}

static void server_bind_error_names_address(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint16_t port = free_udp_port();
    /* The port is taken on 127.0.0.1 by another socket. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr = ip("127.0.0.1")};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    struct sk_dns_server *s = sk_dns_server_new(&loop, port);
    struct in_addr a = ip("127.0.0.1");
    struct sk_err err = {0};
    assert_int_equal(sk_dns_server_listen(s, &a, 1, &err), SK_EIO);
    char want[128];
    snprintf(want, sizeof want, "DNS on 127.0.0.1:%u: address already in use",
             port);
    assert_string_equal(err.msg, want);
    close(fd);
    /* Retried once the port is free. */
    assert_int_equal(sk_dns_server_listen(s, &a, 1, &err), SK_OK);
    sk_dns_server_close(s, NULL, NULL);
    sk_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_resolution),
        cmocka_unit_test(table_checks),
        cmocka_unit_test(message_answers),
        cmocka_unit_test(message_size_limits),
        cmocka_unit_test(message_bad_input),
        cmocka_unit_test(server_on_loopback),
        cmocka_unit_test(server_closes_without_sockets),
        cmocka_unit_test(server_bind_error_names_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
