#include "skiff/constraint.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

static void trim(char *s)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    size_t start = 0;
    while (s[start] && isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, len - start + 1);
}

enum sk_rc sk_constraint_parse(const char *expr, struct sk_constraint *out,
                               struct sk_err *err)
{
    if (!expr || strlen(expr) > 400)
        return sk_err_set(err, SK_EINVAL,
                          "constraint is missing or longer than 400 bytes");
    const char *op = strstr(expr, "==");
    bool equal = true;
    const char *ne = strstr(expr, "!=");
    if (!op || (ne && ne < op)) {
        op = ne;
        equal = false;
    }
    if (!op)
        return sk_err_set(err, SK_EINVAL,
                          "constraint \"%s\": want KEY==VALUE or KEY!=VALUE",
                          expr);
    char key[200], value[256];
    size_t klen = (size_t)(op - expr);
    if (klen >= sizeof key || strlen(op + 2) >= sizeof value)
        return sk_err_set(err, SK_EINVAL, "constraint \"%s\" is too long",
                          expr);
    memcpy(key, expr, klen);
    key[klen] = '\0';
    snprintf(value, sizeof value, "%s", op + 2);
    trim(key);
    trim(value);
    if (!*value || strstr(value, "==") || strstr(value, "!="))
        return sk_err_set(err, SK_EINVAL,
                          "constraint \"%s\": want KEY==VALUE or KEY!=VALUE",
                          expr);
    struct sk_constraint c = {.equal = equal};
    if (strcmp(key, "node.id") == 0) {
        c.key = SK_CKEY_ID;
    } else if (strcmp(key, "node.hostname") == 0) {
        c.key = SK_CKEY_HOSTNAME;
    } else if (strcmp(key, "node.role") == 0) {
        c.key = SK_CKEY_ROLE;
        if (strcmp(value, "manager") != 0 && strcmp(value, "worker") != 0)
            return sk_err_set(err, SK_EINVAL,
                              "constraint \"%s\": node.role is manager or "
                              "worker",
                              expr);
    } else if (strcmp(key, "node.ip") == 0) {
        c.key = SK_CKEY_IP;
    } else if (strncmp(key, "node.labels.", 12) == 0 && key[12]) {
        if (strlen(key + 12) >= sizeof c.label)
            return sk_err_set(err, SK_EINVAL,
                              "constraint \"%s\": label key too long", expr);
        c.key = SK_CKEY_LABEL;
        memcpy(c.label, key + 12, strlen(key + 12) + 1);
    } else {
        return sk_err_set(err, SK_EINVAL,
                          "constraint \"%s\": unknown key %s (use node.id, "
                          "node.hostname, node.role, node.ip or "
                          "node.labels.KEY)",
                          expr, key);
    }
    snprintf(c.value, sizeof c.value, "%s", value);
    *out = c;
    return SK_OK;
}

bool sk_constraint_match(const struct sk_constraint *c, const struct sk_node *n)
{
    const char *have = NULL;
    switch (c->key) {
    case SK_CKEY_ID:
        have = n->meta.id;
        break;
    case SK_CKEY_HOSTNAME:
        have = n->description.hostname ? n->description.hostname : n->spec.name;
        break;
    case SK_CKEY_ROLE:
        have = sk_node_role_names[n->spec.role];
        break;
    case SK_CKEY_IP:
        have = n->description.addr;
        break;
    case SK_CKEY_LABEL:
        have = sk_kv_get(n->spec.labels, n->spec.n_labels, c->label);
        break;
    }
    bool same = have && strcmp(have, c->value) == 0;
    return c->equal ? same : !same;
}

enum sk_rc sk_preference_parse(const char *expr, char *label_key, size_t size,
                               struct sk_err *err)
{
    static const char prefix[] = "spread=node.labels.";
    if (!expr || strncmp(expr, prefix, sizeof prefix - 1) != 0 ||
        !expr[sizeof prefix - 1] || strlen(expr + sizeof prefix - 1) >= size)
        return sk_err_set(err, SK_EINVAL,
                          "placement preference \"%s\": want "
                          "spread=node.labels.KEY",
                          expr ? expr : "");
    snprintf(label_key, size, "%s", expr + sizeof prefix - 1);
    return SK_OK;
}

enum sk_rc sk_placement_rules_parse(const struct sk_placement *p,
                                    struct sk_placement_rules *out,
                                    struct sk_err *err)
{
    enum sk_rc rc = SK_OK;
    memset(out, 0, sizeof *out);
    out->n_constraints = p->n_constraints;
    out->constraints = sk_calloc(p->n_constraints ? p->n_constraints : 1,
                                 sizeof *out->constraints);
    for (size_t i = 0; i < p->n_constraints; i++) {
        if (sk_constraint_parse(p->constraints[i], &out->constraints[i],
                                rc == SK_OK ? err : NULL) != SK_OK) {
            out->bad_constraint = true;
            rc = SK_EINVAL;
        }
    }
    out->n_spread = p->n_preferences;
    out->spread =
        sk_calloc(p->n_preferences ? p->n_preferences : 1, sizeof *out->spread);
    for (size_t i = 0; i < p->n_preferences; i++) {
        if (sk_preference_parse(p->preferences[i], out->spread[i],
                                sizeof out->spread[i],
                                rc == SK_OK ? err : NULL) != SK_OK) {
            out->spread[i][0] = '\0';
            rc = SK_EINVAL;
        }
    }
    return rc;
}

void sk_placement_rules_free(struct sk_placement_rules *r)
{
    if (!r)
        return;
    free(r->constraints);
    free(r->spread);
    memset(r, 0, sizeof *r);
}

bool sk_node_eligible(const struct sk_node *n,
                      const struct sk_placement_rules *r, bool *out_for_new)
{
    *out_for_new = false;
    if (n->spec.availability == SK_AVAIL_DRAIN)
        return false;
    if (r && r->bad_constraint)
        return false;
    for (size_t c = 0; r && c < r->n_constraints; c++)
        if (!sk_constraint_match(&r->constraints[c], n))
            return false;
    *out_for_new = n->status.state == SK_NODE_READY &&
                   n->spec.availability == SK_AVAIL_ACTIVE;
    return true;
}
