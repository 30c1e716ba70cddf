/* skiff completion bash: a bash completion script made from the CLI's own
 * tables -- the command table, the global flags, and each command's flag
 * table as it hands it to parse_flags (cli.describe) -- so it cannot drift
 * from what the commands accept.
 *
 * The script completes the command words, each command's flags (and the
 * output flags every command takes), the choices of a flag that has them
 * (--mode replicated|global), and the positional words of the few commands
 * that have fixed ones (join-token worker|manager). It needs bash alone,
 * not the bash-completion package. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff_cli.h"

/* What one command's flag table says, as the script's words. */
struct described {
    char *flags;   /* "--name --replicas -e ..." */
    char *valued;  /* the flags that take a value */
    char *choices; /* case arms: "--mode) words='replicated global' ;;" */
};

static void append(char **s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void append(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = sk_vprintf(fmt, ap);
    va_end(ap);
    char *joined = sk_printf("%s%s", *s ? *s : "", add);
    free(add);
    free(*s);
    *s = joined;
}

/* One flag into the script's lists; pattern is "--mode" or "--user|-u".
 * Its choices only with_choices (the output flags' are the global ones). */
static void describe_flag(struct described *d, const struct sk_flag *f,
                          bool with_choices)
{
    char pattern[96];
    if (f->short_name)
        snprintf(pattern, sizeof pattern, "--%s|-%c", f->name, f->short_name);
    else
        snprintf(pattern, sizeof pattern, "--%s", f->name);
    append(&d->flags, "%s--%s", d->flags ? " " : "", f->name);
    if (f->short_name)
        append(&d->flags, " -%c", f->short_name);
    if (f->type == SK_FLAG_BOOL)
        return;
    append(&d->valued, "%s--%s", d->valued ? " " : "", f->name);
    if (f->short_name)
        append(&d->valued, " -%c", f->short_name);
    if (!f->choices || !with_choices)
        return;
    append(&d->choices, "        %s) words='", pattern);
    for (size_t i = 0; f->choices[i]; i++)
        append(&d->choices, "%s%s", i ? " " : "", f->choices[i]);
    append(&d->choices, "' ;;\n");
}

static void collect(const char *usage, const struct sk_flag *flags, size_t n,
                    void *ctx)
{
    struct described *d = ctx;
    bool has_format = false;
    for (size_t i = 0; i < n; i++) {
        describe_flag(d, &flags[i], true);
        has_format |= strcmp(flags[i].name, "format") == 0;
    }
    /* Every command takes the output flags after its words too. */
    if (!has_format)
        describe_flag(
            d, sk_flag_get(cli_global_flags, cli_n_global_flags, "format"),
            false);
}

static void described_free(struct described *d)
{
    free(d->flags);
    free(d->valued);
    free(d->choices);
}

static const char *key_of(const struct cli_command *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s", c->words[0], c->words[1] ? " " : "",
             c->words[1] ? c->words[1] : "");
    return buf;
}

/* The global flags, described like a command's. */
static void describe_globals(struct described *d)
{
    for (size_t i = 0; i < cli_n_global_flags; i++)
        describe_flag(d, &cli_global_flags[i], true);
}

/* The first words (unique, in table order) and each group's second
 * words. */
static void print_words(FILE *out)
{
    fprintf(out, "_skiff_commands='");
    for (size_t i = 0; i < cli_n_commands; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen =
                strcmp(cli_commands[k].words[0], cli_commands[i].words[0]) == 0;
        if (!seen)
            fprintf(out, "%s%s", i ? " " : "", cli_commands[i].words[0]);
    }
    fprintf(out, "'\n\n_skiff_subcommands() {\n    case $1 in\n");
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(cli_commands[k].words[0], c->words[0]) == 0;
        if (seen || !c->words[1])
            continue;
        fprintf(out, "    %s) echo '", c->words[0]);
        bool first = true;
        for (size_t k = i; k < cli_n_commands; k++)
            if (cli_commands[k].words[1] &&
                strcmp(cli_commands[k].words[0], c->words[0]) == 0) {
                fprintf(out, "%s%s", first ? "" : " ",
                        cli_commands[k].words[1]);
                first = false;
            }
        fprintf(out, "' ;;\n");
    }
    fprintf(out, "    *) return 1 ;;\n    esac\n}\n\n");
}

/* Per command: its flags, those that take a value, their choices, and
 * its positional words. */
static void print_commands(FILE *out)
{
    char *none[] = {NULL};
    fprintf(out, "_skiff_command() {\n"
                 "    flags= valued= args=\n"
                 "    case $1 in\n");
    struct described g = {0};
    describe_globals(&g);
    fprintf(out, "    '') flags='%s' valued='%s' ;;\n", g.flags,
            g.valued ? g.valued : "");
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        struct described d = {0};
        cli.describe = collect;
        cli.describe_ctx = &d;
        c->fn(0, none);
        cli.describe = NULL;
        char key[64];
        fprintf(out, "    '%s') flags='%s' valued='%s' args='%s' ;;\n",
                key_of(c, key, sizeof key), d.flags ? d.flags : "",
                d.valued ? d.valued : "", c->args ? c->args : "");
        described_free(&d);
    }
    fprintf(out, "    esac\n}\n\n");

    fprintf(out, "_skiff_choices() {\n"
                 "    words=\n"
                 "    case $1 in\n");
    fprintf(out, "    '')\n        case $2 in\n%s        esac ;;\n",
            g.choices ? g.choices : "");
    described_free(&g);
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        struct described d = {0};
        cli.describe = collect;
        cli.describe_ctx = &d;
        c->fn(0, none);
        cli.describe = NULL;
        char key[64];
        if (d.choices)
            fprintf(out, "    '%s')\n        case $2 in\n%s        esac ;;\n",
                    key_of(c, key, sizeof key), d.choices);
        described_free(&d);
    }
    fprintf(out, "    esac\n}\n\n");
}

/* The driver: finds the command words (skipping the global flags and
 * their values), then completes what the cursor is on. */
static const char driver[] =
    "_skiff_has() { case \" $1 \" in *\" $2 \"*) return 0 ;; esac; return 1; "
    "}\n"
    "\n"
    "_skiff() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev= i=1 w cmd= sub= key\n"
    "    local flags valued args words subs\n"
    "    COMPREPLY=()\n"
    "    [ \"$COMP_CWORD\" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    _skiff_command ''\n"
    "    while [ \"$i\" -lt \"$COMP_CWORD\" ]; do\n"
    "        w=${COMP_WORDS[i]}\n"
    "        i=$((i + 1))\n"
    "        case $w in\n"
    "        -*) _skiff_has \"$valued\" \"$w\" && i=$((i + 1)); continue ;;\n"
    "        esac\n"
    "        cmd=$w\n"
    "        if subs=$(_skiff_subcommands \"$cmd\"); then\n"
    "            if [ \"$i\" -lt \"$COMP_CWORD\" ]; then\n"
    "                sub=${COMP_WORDS[i]}\n"
    "            else\n"
    "                COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
    "                return 0\n"
    "            fi\n"
    "        fi\n"
    "        break\n"
    "    done\n"
    "    key=$cmd${sub:+ $sub}\n"
    "    [ -z \"$cmd\" ] || _skiff_command \"$key\"\n"
    "    if _skiff_has \"$valued\" \"$prev\"; then\n"
    "        _skiff_choices \"$key\" \"$prev\"\n"
    "        [ -n \"$words\" ] || _skiff_choices '' \"$prev\"\n"
    "        [ -z \"$words\" ] || COMPREPLY=($(compgen -W \"$words\" -- "
    "\"$cur\"))\n"
    "        return 0\n"
    "    fi\n"
    "    case $cur in\n"
    "    -*) COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\")) ;;\n"
    "    *)\n"
    "        if [ -z \"$cmd\" ]; then\n"
    "            COMPREPLY=($(compgen -W \"$_skiff_commands\" -- \"$cur\"))\n"
    "        elif [ -n \"$args\" ]; then\n"
    "            COMPREPLY=($(compgen -W \"$args\" -- \"$cur\"))\n"
    "        fi ;;\n"
    "    esac\n"
    "    return 0\n"
    "}\n"
    "\n"
    "complete -F _skiff skiff\n";

int cmd_completion(int argc, char **argv)
{
    struct sk_flag f[] = {HELP_FLAG};
    const char *usage = "skiff completion bash";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, 1, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional != 1 || strcmp(res.positional[0], "bash") != 0) {
        rc = fail("usage: %s (bash is the one shell supported)", usage);
    } else {
        printf("# bash completion for skiff, made by `skiff completion "
               "bash`.\n"
               "# Install: skiff completion bash > "
               "/etc/bash_completion.d/skiff\n"
               "# (or source it from ~/.bashrc: source <(skiff completion "
               "bash))\n\n");
        print_words(stdout);
        print_commands(stdout);
        fputs(driver, stdout);
    }
    sk_flags_free(f, 1, &res);
    return rc;
}
