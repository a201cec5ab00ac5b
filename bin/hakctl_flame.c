/*
 * A flame graph of a heap profile as a standalone SVG (hakctl_stacks.h):
 * the stacks merged into a tree (children in name order), the root "all"
 * at the bottom and callees above their callers, each frame a <rect> as
 * wide as its bytes' share, its name in a <text> when it fits and in full
 * in a <title> tooltip with its bytes.  No script: a browser, an image
 * viewer or an XML parser opens it as it is.
 */
#include "hakctl_stacks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_WIDTH 1200.0
#define PAD 10.0
#define FRAME_HEIGHT 16.0
#define TOP 44.0       /* the title's band */
#define BOTTOM 24.0    /* the footer's band */
#define MIN_WIDTH 0.1  /* narrower frames (and what they hold) are not drawn */
#define CHAR_WIDTH 7.2 /* of the 12px monospace font */
#define MAX_DEPTH 512  /* frames of a stack drawn */

typedef struct fnode {
    const char *name; /* in the profile's frames, not NUL-terminated */
    size_t len;
    double bytes;
    size_t child, next; /* indices into the pool; 0: none */
} fnode;

typedef struct flame {
    fnode *pool; /* pool[0] is the root */
    size_t n, cap;
    unsigned depth; /* the deepest stack drawn */
    double total;
    FILE *out;
} flame;

/* ---- the tree ---- */

static int name_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

/* The child of parent named name[0..len), added in name order if new. */
static size_t child_of(flame *f, size_t parent, const char *name, size_t len) {
    size_t *link = &f->pool[parent].child;
    while (*link != 0 && name_cmp(f->pool[*link].name, f->pool[*link].len, name, len) < 0)
        link = &f->pool[*link].next;
    if (*link != 0 && name_cmp(f->pool[*link].name, f->pool[*link].len, name, len) == 0) return *link;
    size_t i = f->n++; /* the pool holds a node for every frame: never full */
    f->pool[i] = (fnode){name, len, 0, 0, *link};
    *link = i;
    return i;
}

static void add_stack(flame *f, const cli_stack *s) {
    size_t node = 0;
    unsigned depth = 0;
    f->pool[0].bytes += s->bytes;
    for (const char *p = s->frames; depth < MAX_DEPTH;) {
        size_t len = strcspn(p, ";");
        node = child_of(f, node, len ? p : "[unknown]", len ? len : 9);
        f->pool[node].bytes += s->bytes;
        depth++;
        if (p[len] == '\0') break;
        p += len + 1;
    }
    if (depth > f->depth) f->depth = depth;
}

static bool build(flame *f, const cli_profile *p) {
    f->cap = 1;
    for (size_t i = 0; i < p->n; i++) {
        size_t frames = 1;
        for (const char *s = p->rows[i].frames; *s; s++) frames += *s == ';';
        f->cap += frames < MAX_DEPTH ? frames : MAX_DEPTH;
    }
    if ((f->pool = calloc(f->cap, sizeof *f->pool)) == NULL) return false;
    f->pool[0] = (fnode){"all", 3, 0, 0, 0};
    f->n = 1;
    for (size_t i = 0; i < p->n; i++) add_stack(f, &p->rows[i]);
    f->total = f->pool[0].bytes;
    return true;
}

/* ---- drawing ---- */

/* XML text: markup characters as entities; bytes outside printable ASCII
 * as '?' (the names are not known to be UTF-8). */
static void put_escaped(FILE *out, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default: fputc(ch >= 32 && ch < 127 ? ch : '?', out);
        }
    }
}

/* flamegraph.pl's "hot" palette, from a hash of the name (stable colours). */
static void colour(const fnode *n, unsigned rgb[3]) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n->len; i++) h = (h ^ (unsigned char)n->name[i]) * 16777619u;
    rgb[0] = 205 + h % 51;
    rgb[1] = (h >> 8) % 231;
    rgb[2] = (h >> 20) % 56;
}

static void draw_frame(flame *f, const fnode *n, double x, double w, unsigned depth) {
    double y = TOP + (double)(f->depth - depth) * FRAME_HEIGHT;
    unsigned rgb[3];
    colour(n, rgb);
    fputs("<g><title>", f->out);
    put_escaped(f->out, n->name, n->len);
    fprintf(f->out, " (%.0f bytes, %.2f%%)</title>", n->bytes, f->total > 0 ? 100.0 * n->bytes / f->total : 0.0);
    fprintf(f->out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>", x, y,
            w, FRAME_HEIGHT - 1, rgb[0], rgb[1], rgb[2]);
    size_t fits = w > 6 ? (size_t)((w - 6) / CHAR_WIDTH) : 0;
    if (fits >= 3) {
        fprintf(f->out, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + FRAME_HEIGHT - 4.5);
        put_escaped(f->out, n->name, n->len <= fits ? n->len : fits - 2);
        fputs(n->len <= fits ? "" : "..", f->out);
        fputs("</text>", f->out);
    }
    fputs("</g>\n", f->out);
}

static void draw(flame *f, size_t node, double x, unsigned depth) {
    const fnode *n = &f->pool[node];
    double scale = (IMAGE_WIDTH - 2 * PAD) / f->total, w = n->bytes * scale;
    if (w < MIN_WIDTH) return;
    draw_frame(f, n, x, w, depth);
    for (size_t c = n->child; c != 0; c = f->pool[c].next) {
        draw(f, c, x, depth + 1);
        x += f->pool[c].bytes * scale;
    }
}

void cli_flame_write(FILE *out, const cli_profile *p, const char *title) {
    flame f = {.out = out};
    bool built = build(&f, p);
    double height = TOP + (double)(f.depth + 1) * FRAME_HEIGHT + BOTTOM;
    fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                 "<svg version=\"1.1\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "xmlns=\"http://www.w3.org/2000/svg\">\n"
                 "<style>text { font-family: monospace; font-size: 12px; fill: #000; } "
                 ".head { font-size: 16px; } .foot { fill: #555; }</style>\n"
                 "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fbfaf3\"/>\n",
            IMAGE_WIDTH, height, IMAGE_WIDTH, height, IMAGE_WIDTH, height);
    fprintf(out, "<text class=\"head\" x=\"%.0f\" y=\"26\" text-anchor=\"middle\">", IMAGE_WIDTH / 2);
    put_escaped(out, title, strlen(title));
    fputs("</text>\n", out);
    if (built && f.total > 0) draw(&f, 0, PAD, 0);
    fprintf(out, "<text class=\"foot\" x=\"%.0f\" y=\"%.0f\">", PAD, height - 8);
    if (!built) fputs("out of memory: no graph", out);
    else if (f.total > 0) fprintf(out, "%.0f bytes in %zu stacks; hover a frame for its name and bytes", f.total, p->n);
    else fputs("no samples", out);
    fputs("</text>\n</svg>\n", out);
    free(f.pool);
}
