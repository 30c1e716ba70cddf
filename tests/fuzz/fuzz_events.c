/* Fuzz target: the events filter (`/v1/events?filters=...`, from the
 * network) and the matching of event lines against it. Any input is
 * either refused or a filter that can be matched against any line; an
 * input taken as an event line is matched against a fixed filter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char task_line[] =
    "{\"index\":5,\"type\":\"task\",\"action\":\"update\",\"id\":"
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaa\",\"name\":\"web.1\",\"service_id\":"
    "\"bbbbbbbbbbbbbbbbbbbbbbbbbb\",\"service_name\":\"web\",\"node_id\":"
    "\"cccccccccccccccccccccccccc\",\"node_name\":\"h1\"}";
static const char node_line[] =
    "{\"index\":6,\"type\":\"node\",\"action\":\"create\",\"id\":"
    "\"cccccccccccccccccccccccccc\",\"name\":\"h1\"}";
static const char *const lines[] = {
    task_line,
    node_line,
    "{\"type\":\"gap\",\"message\":\"gone\"}",
    "not json",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct sk_events_filter *f = NULL;
    struct sk_err err;
    if (sk_events_filter_parse(text, &f, &err) == SK_OK) {
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
            sk_events_filter_match(f, lines[i], strlen(lines[i]));
        /* The gap line passes every filter. */
        if (!sk_events_filter_match(f, lines[2], strlen(lines[2])))
            abort();
        sk_events_filter_free(f);
    } else if (err.code == SK_OK || !err.msg[0]) {
        abort(); /* a refusal says why */
    }
    if (sk_events_filter_parse("{\"type\":[\"task\"],\"service\":[\"web\"],"
                               "\"node\":[\"h1\",\"cccc\"]}",
                               &f, &err) != SK_OK)
        abort();
    sk_events_filter_match(f, text, size);
    sk_events_filter_free(f);
    free(text);
    return 0;
}
