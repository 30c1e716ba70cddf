/* vip_apply NETNS [VIP=ADDR,ADDR...]...: applies the VIP rules
 * (agent/vip.h) for the services given to the network namespace NETNS (a
 * container's SandboxKey or /proc/PID/ns/net) with the real nftables ops,
 * for the lab tests. "VIP=" with no address: a VIP without tasks. No
 * service at all: the rules are removed. Prints the rules applied. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/vip.h"
#include "skiff/mem.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vip_apply NETNS [VIP=ADDR,ADDR...]...\n");
        return 2;
    }
    size_t n = (size_t)argc - 2;
    struct sk_vip_service *s = sk_calloc(n + 1, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        char *arg = sk_strdup(argv[i + 2]);
        char *eq = strchr(arg, '=');
        if (eq)
            *eq = '\0';
        if (!eq || inet_pton(AF_INET, arg, &s[i].vip) != 1) {
            fprintf(stderr, "vip_apply: bad service \"%s\"\n", argv[i + 2]);
            return 2;
        }
        struct in_addr *b = sk_calloc(strlen(eq + 1) / 2 + 1, sizeof *b);
        for (char *tok = strtok(eq + 1, ","); tok; tok = strtok(NULL, ",")) {
            if (inet_pton(AF_INET, tok, &b[s[i].n_backends]) != 1) {
                fprintf(stderr, "vip_apply: bad address \"%s\"\n", tok);
                return 2;
            }
            s[i].n_backends++;
        }
        s[i].backends = b;
        free(arg);
    }
    struct sk_vip_target t = {.netns = argv[1]};
    struct sk_err err = {0};
    if (sk_vip_sync(sk_vip_nft_ops(), NULL, &t, s, n, NULL, &err) != SK_OK) {
        fprintf(stderr, "vip_apply: %s\n", err.msg);
        return 1;
    }
    fputs(t.applied, stdout);
    sk_vip_target_clear(&t);
    for (size_t i = 0; i < n; i++)
        free((void *)s[i].backends);
    free(s);
    return 0;
}
