/*
 * cmd_describe.c - printing what a plugin is and what it asks for.
 *
 * Manifest text comes from whoever wrote the plugin, and it is shown right
 * before the user approves it: control characters are replaced, so a
 * description cannot move the cursor or rewrite the permissions shown.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_put_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p != '\0'; p++)
        putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static void print_list(const char *indent, const char *label, char **items, size_t n)
{
    int pad = 12 - (int)strlen(label); /* values line up under "description:" of `info` */
    printf("%s%s:%*s", indent, label, pad > 1 ? pad : 1, "");
    if (n == 0)
        fputs("none", stdout);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            fputs(", ", stdout);
        cli_put_text(items[i]);
    }
    putchar('\n');
}

void cli_print_permissions(const prism_manifest *m, const char *indent)
{
    print_list(indent, "network", m->network, m->network_count);
    print_list(indent, "env", m->env, m->env_count);
}

/* "name version", then ": description" when there is one. */
static void print_identity(const prism_manifest *m)
{
    cli_put_text(m->name);
    putchar(' ');
    cli_put_text(m->version);
    if (m->description != NULL && m->description[0] != '\0') {
        fputs(": ", stdout);
        cli_put_text(m->description);
    }
}

void cli_print_request(const prism_manifest *m)
{
    print_identity(m);
    printf("\n  kind: %s\n", m->is_group ? "group" : "plugin");
    if (!m->is_group) {
        cli_print_permissions(m, "  ");
        return;
    }
    for (size_t i = 0; i < m->sub_count; i++) {
        fputs("  sub-plugin ", stdout);
        print_identity(m->subs[i]);
        putchar('\n');
        cli_print_permissions(m->subs[i], "    ");
    }
    if (m->missing_count > 0)
        print_list("  ", "listed but not present (skipped)", m->missing, m->missing_count);
}
