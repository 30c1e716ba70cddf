/* What `--version` prints: skiff's version and the versions of the libraries
 * the binary is linked with (raft, libuv, OpenSSL, jansson, libcurl), read
 * at run time where the library offers it. */
#ifndef SKIFF_VERSION_H
#define SKIFF_VERSION_H

#include <stdio.h>

const char *sk_version(void);
/* Writes `PROGRAM VERSION` and one line per linked library to f. */
void sk_version_print(FILE *f, const char *program);

#endif
