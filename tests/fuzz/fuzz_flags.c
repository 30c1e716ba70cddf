/* Fuzz target: the command-line flag parser (lib/flags.c) and the parsers
 * of --publish values (sk_port_parse) and --network values
 * (sk_network_ref_parse). The input is an argv, one argument per
 * NUL-terminated piece, parsed against a table with every flag type, once
 * in each stop_at_positional mode; each piece is also parsed as a port and
 * as a network. Any argv must be accepted or rejected without crashing or
 * leaking; a rejection must say why, and what is accepted must hold
 * together: values in range, enum results naming a choice, every result
 * string pointing into argv, a port that the port schema encodes and
 * decodes unchanged, and a network whose name and aliases are valid names
 * and that its schema encodes and decodes unchanged. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/flags.h"
#include "skiff/objects.h"

#define MAX_ARGS 64
#define MAX_ARG_LEN 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const modes[] = {"replicated", "global", NULL};

enum {
    F_QUIET,
    F_ALL,
    F_NAME,
    F_LABEL,
    F_REPLICAS,
    F_OFFSET,
    F_GRACE,
    F_MEMORY,
    F_CPU,
    F_MODE,
    F_COUNT
};

static struct sk_flag flags[F_COUNT] = {
    [F_QUIET] = {.name = "quiet", .short_name = 'q', .type = SK_FLAG_BOOL},
    [F_ALL] = {.name = "all", .short_name = 'a', .type = SK_FLAG_BOOL},
    [F_NAME] = {.name = "name", .type = SK_FLAG_STRING},
    [F_LABEL] = {.name = "label-add",
                 .short_name = 'l',
                 .type = SK_FLAG_STRINGS},
    [F_REPLICAS] = {.name = "replicas",
                    .short_name = 'n',
                    .type = SK_FLAG_INT,
                    .min = 0,
                    .max = 100000},
    [F_OFFSET] = {.name = "offset", .type = SK_FLAG_INT},
    [F_GRACE] = {.name = "stop-grace-period",
                 .short_name = 't',
                 .type = SK_FLAG_DURATION},
    [F_MEMORY] = {.name = "limit-memory", .type = SK_FLAG_BYTES},
    [F_CPU] = {.name = "limit-cpu", .type = SK_FLAG_CPUS},
    [F_MODE] = {.name = "mode",
                .short_name = 'm',
                .type = SK_FLAG_ENUM,
                .choices = modes},
};

/* Whether s is inside one of the arguments (terminator included). */
static bool in_argv(const char *s, char **argv, int argc)
{
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (s >= argv[i] && s <= argv[i] + len)
            return true;
    }
    return false;
}

static void check(char **argv, int argc, const struct sk_flags_result *res)
{
    if (res->n_positional > (size_t)argc)
        abort();
    for (size_t i = 0; i < res->n_positional; i++) {
        bool found = false;
        for (int j = 0; j < argc && !found; j++)
            found = res->positional[i] == argv[j];
        if (!found)
            abort();
    }
    for (size_t i = 0; i < F_COUNT; i++) {
        const struct sk_flag *f = &flags[i];
        if (!f->set) {
            if (f->on || f->str || f->num || f->strs || f->n_strs)
                abort();
            continue;
        }
        if (f->str && !in_argv(f->str, argv, argc))
            abort();
        if (f->type != SK_FLAG_BOOL && !f->str)
            abort();
        for (size_t j = 0; j < f->n_strs; j++)
            if (!in_argv(f->strs[j], argv, argc))
                abort();
    }
    if (flags[F_LABEL].set && flags[F_LABEL].n_strs == 0)
        abort();
    int64_t r = flags[F_REPLICAS].num;
    if (r < 0 || r > 100000)
        abort();
    if (flags[F_GRACE].num < 0 || flags[F_MEMORY].num < 0 ||
        flags[F_CPU].num < 0)
        abort();
    if (flags[F_MODE].set &&
        (flags[F_MODE].num < 0 || flags[F_MODE].num > 1 ||
         strcmp(flags[F_MODE].str, modes[flags[F_MODE].num]) != 0))
        abort();
}

static void check_port(const char *text)
{
    struct sk_port p, back;
    struct sk_err err = {0};
    enum sk_rc rc = sk_port_parse("--publish", text, &p, &err);
    if (rc != SK_OK) {
        if (rc != SK_EINVAL || err.code != SK_EINVAL ||
            strncmp(err.msg, "--publish \"", 11) != 0)
            abort();
        return;
    }
    if (p.target < 1 || p.target > 65535 || p.published < 0 ||
        p.published > 65535 || p.protocol < 0 || p.protocol > 1 || p.mode < 0 ||
        p.mode > 1)
        abort();
    json_t *j = sk_schema_encode(&sk_port_schema, &p, SK_VIEW_FULL);
    if (sk_schema_decode(&sk_port_schema, j, &back, NULL, &err) != SK_OK ||
        !sk_schema_equal(&sk_port_schema, &p, &back))
        abort();
    json_decref(j);
}

static void check_network(const char *text)
{
    struct sk_network_ref r, back;
    struct sk_err err = {0};
    enum sk_rc rc = sk_network_ref_parse("--network", text, &r, &err);
    if (rc != SK_OK) {
        if (rc != SK_EINVAL || err.code != SK_EINVAL ||
            strncmp(err.msg, "--network \"", 11) != 0)
            abort();
        return;
    }
    if (sk_name_validate("network", r.target, NULL) != SK_OK || r.id[0])
        abort();
    for (size_t i = 0; i < r.n_aliases; i++)
        if (sk_name_validate("alias", r.aliases[i], NULL) != SK_OK)
            abort();
    json_t *j = sk_schema_encode(&sk_network_ref_schema, &r, SK_VIEW_FULL);
    if (sk_schema_decode(&sk_network_ref_schema, j, &back, NULL, &err) !=
            SK_OK ||
        !sk_schema_equal(&sk_network_ref_schema, &r, &back))
        abort();
    json_decref(j);
    sk_schema_free(&sk_network_ref_schema, &r);
    sk_schema_free(&sk_network_ref_schema, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    size_t start = 0;
    /* Each piece ends at a NUL; the last one may end with the input. */
    while (start < size && argc < MAX_ARGS) {
        const uint8_t *nul = memchr(data + start, 0, size - start);
        size_t end = nul ? (size_t)(nul - data) : size;
        size_t len = end - start;
        if (len > MAX_ARG_LEN)
            len = MAX_ARG_LEN;
        argv[argc] = malloc(len + 1);
        if (!argv[argc])
            abort();
        memcpy(argv[argc], data + start, len);
        argv[argc][len] = '\0';
        argc++;
        start = end + 1;
    }

    for (int stop = 0; stop < 2; stop++) {
        struct sk_flags_result res;
        struct sk_err err = {0};
        enum sk_rc rc =
            sk_flags_parse(flags, F_COUNT, argc, argv, stop != 0, &res, &err);
        if (rc == SK_OK)
            check(argv, argc, &res);
        else if (rc != SK_EINVAL || err.code != SK_EINVAL || !err.msg[0])
            abort();
        sk_flags_free(flags, F_COUNT, &res);
    }

    for (int i = 0; i < argc; i++) {
        check_port(argv[i]);
        check_network(argv[i]);
        free(argv[i]);
    }
    return 0;
}
