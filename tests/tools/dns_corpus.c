/* dns_corpus DIR: writes the seed corpus of tests/fuzz/fuzz_dns.c, DNS
 * queries made with ldns, one file each (tests/fuzz/corpus/dns/). */
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_pkt(const char *dir, const char *file, ldns_pkt *p)
{
    uint8_t *wire = NULL;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK)
        exit(1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(wire, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(wire);
    ldns_pkt_free(p);
}

static ldns_pkt *query(const char *name, ldns_rr_type type, uint16_t id)
{
    ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type,
                                     LDNS_RR_CLASS_IN, LDNS_RD);
    if (!p)
        exit(1);
    ldns_pkt_set_id(p, id);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dns_corpus DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    write_pkt(dir, "a_api", query("api.", LDNS_RR_TYPE_A, 1));
    write_pkt(dir, "a_tasks_api_mixed_case",
              query("Tasks.API.", LDNS_RR_TYPE_A, 2));
    write_pkt(dir, "aaaa_api", query("api.", LDNS_RR_TYPE_AAAA, 3));
    write_pkt(dir, "any_db", query("db.", LDNS_RR_TYPE_ANY, 4));
    write_pkt(dir, "mx_unknown", query("www.example.com.", LDNS_RR_TYPE_MX, 5));
    ldns_pkt *p = query("tasks.backend.", LDNS_RR_TYPE_A, 6);
    ldns_pkt_set_edns_udp_size(p, 4096);
    ldns_pkt_set_edns_do(p, true);
    write_pkt(dir, "a_edns", p);
    p = query("api.", LDNS_RR_TYPE_A, 7);
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION,
                     ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
    write_pkt(dir, "two_questions", p);
    p = query("api.", LDNS_RR_TYPE_A, 8);
    ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
    write_pkt(dir, "notify", p);
    p = query("api.", LDNS_RR_TYPE_A, 9);
    ldns_pkt_set_qr(p, true);
    write_pkt(dir, "response", p);
    p = ldns_pkt_query_new(ldns_dname_new_frm_str("version.bind."),
                           LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH, 0);
    write_pkt(dir, "chaos_txt", p);
    return 0;
}
