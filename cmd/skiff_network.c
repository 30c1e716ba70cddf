/* skiff network create|ls|inspect|rm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff/objects.h"
#include "skiff_cli.h"

int cmd_network_create(int argc, char **argv)
{
    enum { DRIVER, SUBNET, GATEWAY, LABEL, INTERNAL, ATTACHABLE, HELP, N };
    struct sk_flag f[N] = {
        [DRIVER] = {.name = "driver",
                    .short_name = 'd',
                    .type = SK_FLAG_STRING,
                    .metavar = "DRIVER",
                    .help = "overlay (the only one, and the default)"},
        [SUBNET] = {.name = "subnet",
                    .type = SK_FLAG_STRING,
                    .metavar = "CIDR",
                    .help = "e.g. 10.0.9.0/24 (default: the next free one of "
                            "the cluster's address pool)"},
        [GATEWAY] = {.name = "gateway",
                     .type = SK_FLAG_STRING,
                     .metavar = "IP",
                     .help = "the gateway in the subnet (default: its first "
                             "address)"},
        [LABEL] = {.name = "label",
                   .type = SK_FLAG_STRINGS,
                   .metavar = "K=V",
                   .help = "network label"},
        [INTERNAL] = {.name = "internal",
                      .type = SK_FLAG_BOOL,
                      .help = "no way out of the network"},
        [ATTACHABLE] = {.name = "attachable",
                        .type = SK_FLAG_BOOL,
                        .help = "standalone containers may join"},
        [HELP] = HELP_FLAG,
    };
    const char *usage = "skiff network create [OPTIONS] NAME";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, N, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    struct sk_network_spec spec = {0};
    sk_schema_defaults(&sk_network_spec_schema, &spec);
    struct sk_err err;
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    spec.name = sk_strdup(res.positional[0]);
    if (f[DRIVER].set) {
        free(spec.driver);
        spec.driver = sk_strdup(f[DRIVER].str);
    }
    if (f[SUBNET].set)
        spec.subnet = sk_strdup(f[SUBNET].str);
    if (f[GATEWAY].set)
        spec.gateway = sk_strdup(f[GATEWAY].str);
    spec.internal = f[INTERNAL].on;
    spec.attachable = f[ATTACHABLE].on;
    for (size_t i = 0; i < f[LABEL].n_strs; i++) {
        const char *kv = f[LABEL].strs[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            rc = fail("--label \"%s\": want KEY=VALUE", kv);
            goto out;
        }
        char *key = sk_strndup(kv, (size_t)(eq - kv));
        sk_kv_set(&spec.labels, &spec.n_labels, key, eq + 1);
        free(key);
    }
    if (sk_network_spec_validate(&spec, &err) != SK_OK) {
        rc = fail_err(&err);
        goto out;
    }
    json_t *body = json_pack(
        "{s:o}", "spec",
        sk_schema_encode(&sk_network_spec_schema, &spec, SK_VIEW_PUBLIC));
    json_t *reply = NULL;
    if (cli_call("POST", "/v1/networks", body, &reply, &err) != SK_OK)
        rc = fail_err(&err);
    else /* the ID, as docker prints it */
        printf("%s\n", jstr(reply, "id"));
    json_decref(body);
    json_decref(reply);
out:
    sk_schema_free(&sk_network_spec_schema, &spec);
    sk_flags_free(f, N, &res);
    return rc;
}

int cmd_network_ls(int argc, char **argv)
{
    enum { QUIET, HELP, N };
    struct sk_flag f[N] = {
        [QUIET] = {.name = "quiet",
                   .short_name = 'q',
                   .type = SK_FLAG_BOOL,
                   .help = "only IDs"},
        [HELP] = HELP_FLAG,
    };
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff network ls [-q]", f, N, argc, argv, false, &res,
                     &code))
        return code;
    bool quiet = f[QUIET].on || cli.quiet;
    sk_flags_free(f, N, &res);
    json_t *all;
    struct sk_err err;
    if (cli_call("GET", "/v1/networks", NULL, &all, &err) != SK_OK)
        return fail_err(&err);
    size_t i;
    json_t *n;
    if (cli.json) {
        print_json(all);
    } else if (quiet) {
        json_array_foreach(all, i, n) printf("%s\n", jstr(n, "id"));
    } else {
        struct table t;
        table_init(&t, 7, "NAME", "ID", "DRIVER", "SUBNET", "GATEWAY", "VNI",
                   "SERVICES");
        json_array_foreach(all, i, n)
        {
            char vni[24], services[24];
            snprintf(vni, sizeof vni, "%lld", jint(n, "vni"));
            snprintf(services, sizeof services, "%zu",
                     json_array_size(json_object_get(n, "services")));
            table_row(&t, jstr(n, "spec.name"), jstr(n, "id"),
                      jstr(n, "spec.driver"), jstr(n, "subnet"),
                      jstr(n, "gateway"), vni, services);
        }
        table_print(&t);
        table_free(&t);
    }
    json_decref(all);
    return 0;
}

int cmd_network_inspect(int argc, char **argv)
{
    return cli_inspect("networks", "skiff network inspect NETWORK...", argc,
                       argv);
}

int cmd_network_rm(int argc, char **argv)
{
    struct sk_flags_result res;
    int code;
    if (!parse_positionals("skiff network rm NETWORK...", 0, argc, argv, &res,
                           &code))
        return code;
    int rc = 0;
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        char *path = sk_printf("/v1/networks/%s", res.positional[i]);
        struct sk_err err;
        if (cli_call("DELETE", path, NULL, NULL, &err) != SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s\n", res.positional[i]);
        free(path);
    }
    sk_flags_free(NULL, 0, &res);
    return rc;
}
