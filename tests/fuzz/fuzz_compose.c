/* Fuzz target: the Compose loader (skiff/compose.h) over one file -- or
 * two, merged, when the bytes hold a line "#--8<--" -- with a fixed
 * environment and two files on a fake disk. Whatever the bytes, it must
 * not crash or leak, notes must say where they are, and a stack without
 * errors must hold only specs a manager would take. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/compose.h"
#include "skiff/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_getenv(void *ctx, const char *name)
{
    static const char *const env[][2] = {
        {"TAG", "1.0"}, {"EMPTY", ""}, {"N", "3"}, {"HOME", "/root"}};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        if (strcmp(env[i][0], name) == 0)
            return env[i][1];
    return NULL;
}

static enum sk_rc fuzz_read(void *ctx, const char *path, size_t max, char **out,
                            size_t *out_len, struct sk_err *err)
{
    static const char *const files[][2] = {
        {"/p/secret.txt", "s3cret"},
        {"/p/app.env", "A=1\nB='two'\nC=\"${TAG}\"\nD\n# x\n"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(files[i][0], path) != 0)
            continue;
        size_t len = strlen(files[i][1]);
        if (len > max)
            return sk_err_set(err, SK_ETOOBIG, "too big");
        *out = sk_strdup(files[i][1]);
        *out_len = len;
        return SK_OK;
    }
    return sk_err_set(err, SK_ENOTFOUND, "no such file");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    static const struct sk_compose_host host = {
        .getenv = fuzz_getenv, .read_file = fuzz_read, .project_dir = "/p"};
    static const char cut[] = "\n#--8<--\n";
    const char *text = (const char *)data;
    const char *second = memmem(text, size, cut, sizeof cut - 1);
    size_t first_len = second ? (size_t)(second - text) : size;
    struct sk_compose_file f[2] = {{"fuzz.yml", text, first_len}};
    if (second) {
        second += sizeof cut - 1;
        f[1] = (struct sk_compose_file){"override.yml", second,
                                        size - (size_t)(second - text)};
    }
    struct sk_stack *st = sk_compose_load("stack", f, second ? 2 : 1, &host);
    if (st->n_errors > SK_COMPOSE_MAX_ERRORS + 1)
        abort();
    char line[1024];
    for (size_t i = 0; i < st->n_errors; i++)
        sk_compose_note_format(&st->errors[i], line, sizeof line);
    for (size_t i = 0; i < st->n_warnings; i++)
        sk_compose_note_format(&st->warnings[i], line, sizeof line);
    if (st->n_errors == 0) {
        for (size_t i = 0; i < st->n_services; i++) {
            const struct sk_service_spec *s = &st->services[i].spec;
            struct sk_err err;
            if (sk_service_spec_validate(s, &err) != SK_OK)
                abort();
            json_t *j =
                sk_schema_encode(&sk_service_spec_schema, s, SK_VIEW_PUBLIC);
            struct sk_service_spec back;
            if (sk_schema_decode(&sk_service_spec_schema, j, &back, NULL,
                                 &err) != SK_OK ||
                !sk_schema_equal(&sk_service_spec_schema, s, &back))
                abort();
            sk_schema_free(&sk_service_spec_schema, &back);
            json_decref(j);
        }
        for (size_t i = 0; i < st->n_networks; i++) {
            struct sk_err err;
            if (!st->networks[i].external &&
                sk_network_spec_validate(&st->networks[i].spec, &err) != SK_OK)
                abort();
        }
    }
    sk_stack_free(st);
    return 0;
}
