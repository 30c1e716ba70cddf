/* skiff: the CLI. Flag parsing and wiring only. */
#include <stdio.h>
#include <string.h>

#include "skiff/version.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            sk_version_print(stdout, "skiff");
            return 0;
        }
    }
    fprintf(stderr, "usage: skiff [--version] COMMAND ...\n");
    return 2;
}
