/* Fuzz target: the agent <-> manager messages (skiff/wire.h) as each side
 * decodes them from a peer: the session message with its assignments (the
 * agent), task reports, the join body and the heartbeat (the manager). The
 * input is decoded as each; whatever it is, a decode either fails and owns
 * nothing, or succeeds, and then the message encodes to text that decodes
 * to an equal message (what one side sends, the other reads back). Task
 * reports are also validated, as the leader does before recording them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct sk_schema *schema, const char *text,
                       size_t len)
{
    /* Large enough for every wire message. */
    union {
        struct sk_session_msg session;
        struct sk_task_reports reports;
        struct sk_join_body join;
        struct sk_heartbeat heartbeat;
    } in, back;
    struct sk_err err;
    if (sk_wire_decode(schema, text, len, &in, &err) != SK_OK) {
        if (!err.msg[0])
            abort(); /* an error always says why */
        return;
    }
    if (schema == &sk_task_reports_schema)
        for (size_t i = 0; i < in.reports.n_tasks; i++)
            sk_task_report_validate(&in.reports.tasks[i], &err);
    size_t enc_len;
    char *enc = sk_wire_encode(schema, &in, true, &enc_len);
    if (enc_len == 0 || enc[enc_len - 1] != '\n')
        abort();
    if (sk_wire_decode(schema, enc, enc_len, &back, &err) != SK_OK ||
        !sk_schema_equal(schema, &in, &back))
        abort();
    free(enc);
    sk_schema_free(schema, &in);
    sk_schema_free(schema, &back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    const char *text = (const char *)data;
    round_trip(&sk_session_msg_schema, text, size);
    round_trip(&sk_task_reports_schema, text, size);
    round_trip(&sk_join_body_schema, text, size);
    round_trip(&sk_heartbeat_schema, text, size);
    return 0;
}
