/* skiffd: the daemon, one per host. Flag parsing and wiring only. */
#include <stdio.h>
#include <string.h>

#include "skiff/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: skiffd --data-dir DIR --advertise-addr ADDR "
               "--data-path-addr ADDR (--init | --join HOST:PORT --token T)\n"
               "       skiffd --version\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            sk_version_print(stdout, "skiffd");
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    usage(stderr);
    return 2;
}
