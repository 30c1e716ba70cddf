/* Private to lib/: shorthands for the field tables of the schema codec
 * (skiff/schema.h). In each, the JSON name is the C member's name. */
#ifndef SKIFF_LIB_FIELDS_H
#define SKIFF_LIB_FIELDS_H

#include <stddef.h>

#include "skiff/schema.h"

#define FIELD(S, m, t, ...)                                                    \
    {                                                                          \
        .name = #m, .type = (t), .offset = offsetof(S, m), __VA_ARGS__         \
    }
#define STR(S, m, ...) FIELD(S, m, SK_FT_STR, __VA_ARGS__)
#define INT(S, m, ...) FIELD(S, m, SK_FT_INT, __VA_ARGS__)
#define UINT(S, m, ...) FIELD(S, m, SK_FT_UINT, __VA_ARGS__)
#define BOOL(S, m, ...) FIELD(S, m, SK_FT_BOOL, __VA_ARGS__)
#define DBL(S, m, ...) FIELD(S, m, SK_FT_DOUBLE, __VA_ARGS__)
#define ENUM(S, m, tbl, ...)                                                   \
    FIELD(S, m, SK_FT_ENUM, .names = (tbl), __VA_ARGS__)
#define ID(S, m, ...) FIELD(S, m, SK_FT_ID, __VA_ARGS__)
#define STRS(S, m, ...)                                                        \
    FIELD(S, m, SK_FT_STRS, .count_offset = offsetof(S, n_##m), __VA_ARGS__)
#define MAP(S, m, ...)                                                         \
    FIELD(S, m, SK_FT_MAP, .count_offset = offsetof(S, n_##m), __VA_ARGS__)
#define OBJ(S, m, sch, ...) FIELD(S, m, SK_FT_OBJ, .sub = &(sch), __VA_ARGS__)
#define PTR(S, m, sch, ...) FIELD(S, m, SK_FT_PTR, .sub = &(sch), __VA_ARGS__)
#define OBJS(S, m, sch, ...)                                                   \
    FIELD(S, m, SK_FT_OBJS, .sub = &(sch), .count_offset = offsetof(S, n_##m), \
          __VA_ARGS__)
#define SCHEMA(var, S, label, tbl)                                             \
    const struct sk_schema var = {label, sizeof(S), tbl,                       \
                                  sizeof(tbl) / sizeof((tbl)[0])}

#endif
