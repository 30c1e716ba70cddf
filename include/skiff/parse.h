/* Parsers for the values users type: durations, byte sizes, CPU counts.
 * Each returns false on malformed or out-of-range input and then writes a
 * message into err naming the value and what was expected; out parameters
 * are written only on success. */
#ifndef SKIFF_PARSE_H
#define SKIFF_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "skiff/err.h"

/* "300ms", "5s", "1m30s", "2h", "0": milliseconds, at most 10 years.
 * A bare number without a unit is refused (ambiguous). */
bool sk_parse_duration_ms(const char *s, int64_t *out_ms, struct sk_err *err);
/* "512", "64k", "512M", "1.5G", "2GiB": bytes, at most 1 PiB. Units are
 * binary (k = 1024). */
bool sk_parse_bytes(const char *s, int64_t *out_bytes, struct sk_err *err);
/* "0.5", "2": CPUs as nano-CPUs (1e9 per CPU), at most 4096 CPUs. */
bool sk_parse_nano_cpus(const char *s, int64_t *out_nano, struct sk_err *err);
/* A decimal integer in [min, max], nothing else (no sign games, no spaces). */
bool sk_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
                  struct sk_err *err);
/* The value of one hexadecimal digit (either case), or -1. */
int sk_hex_digit(char c);
/* Formats milliseconds as the shortest of "1.5s", "250ms", "2m0s", ... */
void sk_format_duration_ms(int64_t ms, char *buf, unsigned long size);
/* An age for people, in its largest sensible unit, singular for one:
 * "1 second", "45 seconds", "3 minutes", "5 hours", "2 days" (seconds up to
 * 2 minutes, minutes up to 2 hours, hours up to 2 days). */
void sk_format_age(int64_t ms, char *buf, unsigned long size);

#endif
