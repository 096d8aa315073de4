/*
 * json_scan.cc - JSON text read by simdjson (json_scan.h): a body's top
 * level for routing, and cJSON trees for the plugins that need one.
 *
 * simdjson's DOM parser validates the whole text and lays it out on a tape
 * in buffers the parser keeps, so a worker's parser allocates nothing per
 * request once warm. What the scan keeps is copied into the request's pool,
 * and a tree into cJSON's nodes (malloc'd, or in the pool for a tree only
 * read), before the next parse reuses those buffers.
 * Built without exceptions: every simdjson call here returns an error code.
 */
#include "json_scan.h"

#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <simdjson.h>
#include <type_traits>

#include "copy.h"

namespace
{

/* cJSON's CJSON_NESTING_LIMIT: a body either parser would refuse for its
 * depth is refused by both. */
constexpr size_t MAX_DEPTH = 1000;
/* The worker's parser grows to the largest body it has read and keeps that
 * size; a larger body gets a parser of its own, freed after the scan. */
constexpr size_t KEEP_CAPACITY = 1u << 20;
constexpr size_t FIRST_CAPACITY = 64u << 10;
/* simdjson stores a container's size in 24 bits and saturates there. */
constexpr size_t SATURATED = 0xFFFFFF;

using simdjson::dom::element;
using simdjson::dom::element_type;

struct sink {
    prism_scan_alloc alloc;
    void *pool;
    bool oom;
};

const char *copy_text(sink &out, std::string_view s)
{
    char *p = static_cast<char *>(out.alloc(out.pool, s.size() + 1));
    if (p == nullptr) {
        out.oom = true;
        return "";
    }
    memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

template <typename Container> size_t count_of(const Container &c)
{
    size_t n = c.size();
    if (n < SATURATED)
        return n;
    n = 0;
    for (auto it = c.begin(); it != c.end(); ++it)
        n++;
    return n;
}

prism_json_field describe(sink &out, element v)
{
    prism_json_field f{};
    simdjson::dom::array a;
    simdjson::dom::object o;
    std::string_view s;
    double d = 0;
    bool b = false;
    if (v.get(s) == simdjson::SUCCESS) {
        f.type = PRISM_JSON_STRING;
        f.string = copy_text(out, s);
        f.len = s.size();
    } else if (v.get(d) == simdjson::SUCCESS) { /* any number; integers too */
        f.type = PRISM_JSON_NUMBER;
        f.number = d;
    } else if (v.get(a) == simdjson::SUCCESS) {
        f.type = PRISM_JSON_ARRAY;
        f.count = count_of(a);
    } else if (v.get(o) == simdjson::SUCCESS) {
        f.type = PRISM_JSON_OBJECT;
        f.count = count_of(o);
    } else if (v.get(b) == simdjson::SUCCESS) {
        f.type = b ? PRISM_JSON_TRUE : PRISM_JSON_FALSE;
    } else {
        f.type = PRISM_JSON_NULL;
    }
    return f;
}

prism_scan_result verdict(simdjson::error_code e)
{
    switch (e) {
    case simdjson::SUCCESS: return PRISM_SCAN_OBJECT;
    case simdjson::MEMALLOC: return PRISM_SCAN_NOMEM;
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE: return PRISM_SCAN_UNSURE;
    default: return PRISM_SCAN_INVALID;
    }
}

/* Members of the top-level object, each object member followed by its own. */
size_t member_count(const simdjson::dom::object &top)
{
    size_t n = 0;
    for (auto kv : top) {
        simdjson::dom::object inner;
        n += 1 + (kv.value.get(inner) == simdjson::SUCCESS ? count_of(inner) : 0);
    }
    return n;
}

prism_scan_result collect(sink &out, const simdjson::dom::object &top, prism_json_member **members, size_t *count)
{
    size_t n = member_count(top);
    if (n > SIZE_MAX / sizeof(prism_json_member))
        return PRISM_SCAN_NOMEM;
    auto *m = static_cast<prism_json_member *>(out.alloc(out.pool, (n ? n : 1) * sizeof(prism_json_member)));
    if (m == nullptr)
        return PRISM_SCAN_NOMEM;
    size_t i = 0;
    for (auto kv : top) {
        long at = static_cast<long>(i);
        m[i++] = {copy_text(out, kv.key), kv.key.size(), -1, describe(out, kv.value)};
        simdjson::dom::object obj;
        if (kv.value.get(obj) != simdjson::SUCCESS)
            continue;
        for (auto inner : obj)
            m[i++] = {copy_text(out, inner.key), inner.key.size(), at, describe(out, inner.value)};
    }
    if (out.oom)
        return PRISM_SCAN_NOMEM;
    *members = m;
    *count = n;
    return PRISM_SCAN_OBJECT;
}

/* true: the text is copied into the parser's padded buffer (simdjson reads
 * up to 64 bytes past the end; a body's buffer has no such guarantee). */
simdjson::error_code read_text(simdjson::dom::parser &parser, const char *text, size_t len, element &root)
{
    return parser.parse(text, len, true).get(root);
}

prism_scan_result scan_root(element root, sink &out, prism_json_member **members, size_t *count)
{
    simdjson::dom::object top;
    if (root.get(top) != simdjson::SUCCESS)
        return PRISM_SCAN_OTHER;
    return collect(out, top, members, count);
}

/* ---- cJSON trees ---- */

/* Where a tree's nodes and strings come from: cJSON's allocator (a tree
 * the caller frees with cJSON_Delete), or the request's pool (a tree to
 * read, released with the request: no allocation per node to free). */
struct maker {
    prism_scan_alloc alloc; /* NULL: cJSON_malloc */
    void *pool;
    bool oom;
    char *slab; /* pool memory carved up a piece at a time: one pool call per slab */
    size_t left;
};

/* Under a quarter of h2o's 4 KB pool chunk, so h2o carves the slab out of
 * its chunk (recycled from request to request) instead of calling malloc
 * for it and free when the request ends. */
constexpr size_t SLAB = 1000;

/* A new slab, or (a long string) a piece of its own. */
void *take_from_pool(maker &m, size_t size)
{
    if (size > SLAB / 4)
        return m.alloc(m.pool, size);
    m.slab = static_cast<char *>(m.alloc(m.pool, SLAB));
    m.left = m.slab != nullptr ? SLAB : 0;
    if (m.slab == nullptr)
        return nullptr;
    m.slab += size;
    m.left -= size;
    return m.slab - size;
}

/* Every piece is rounded to 8 bytes, so each stays aligned for a cJSON
 * node; most come from the slab at hand, inline. */
inline void *take(maker &m, size_t size)
{
    size = (size + 7) & ~static_cast<size_t>(7);
    void *p;
    if (m.alloc != nullptr && size <= m.left) {
        p = m.slab;
        m.slab += size;
        m.left -= size;
        return p;
    }
    p = m.alloc != nullptr ? take_from_pool(m, size) : cJSON_malloc(size);
    if (p == nullptr)
        m.oom = true;
    return p;
}

char *copy_for_cjson(maker &m, std::string_view s)
{
    char *p = static_cast<char *>(take(m, s.size() + 1));
    if (p != nullptr) {
        prism_copy_bytes(p, s.data(), s.size());
        p[s.size()] = '\0';
    }
    return p;
}

cJSON *new_node(maker &m, int type)
{
    auto *node = static_cast<cJSON *>(take(m, sizeof(cJSON)));
    if (node != nullptr) {
        memset(node, 0, sizeof(*node));
        node->type = type;
    }
    return node;
}

/* Appended as cJSON appends: the first child's prev is the last child. */
void append(cJSON *parent, cJSON *child)
{
    cJSON *first = parent->child;
    if (first == nullptr) {
        parent->child = child;
        child->prev = child;
        return;
    }
    child->prev = first->prev;
    first->prev->next = child;
    first->prev = child;
}

cJSON *build(maker &m, element v);

/* Children appended in order, an object's keys copied. A failure stops the
 * walk; the caller frees what was linked so far (a cJSON tree) or leaves
 * it to the pool. */
template <typename Container> bool build_children(maker &m, cJSON *node, const Container &c)
{
    for (auto e : c) {
        cJSON *child;
        if constexpr (std::is_same_v<Container, simdjson::dom::object>) {
            child = build(m, e.value);
            if (child != nullptr) {
                append(node, child);
                child->string = copy_for_cjson(m, e.key);
            }
        } else {
            child = build(m, e);
            if (child != nullptr)
                append(node, child);
        }
        if (m.oom)
            return false;
    }
    return true;
}

/* The node cJSON's parser would make for v (its children linked into it
 * even when memory ran out part way). One look at the tape's type, then the
 * value: integers read as doubles, as cJSON reads every number. */
cJSON *build(maker &m, element v)
{
    cJSON *node;
    switch (v.type()) {
    case element_type::STRING: {
        std::string_view s = v.get_string().value_unsafe();
        node = new_node(m, cJSON_String);
        if (node != nullptr)
            node->valuestring = copy_for_cjson(m, s);
        return node;
    }
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
        double d = v.get_double().value_unsafe();
        node = new_node(m, cJSON_Number);
        if (node != nullptr) { /* as cJSON_CreateNumber sets it */
            node->valuedouble = d;
            node->valueint = d >= INT_MAX ? INT_MAX : d <= static_cast<double>(INT_MIN) ? INT_MIN : static_cast<int>(d);
        }
        return node;
    }
    case element_type::OBJECT:
        node = new_node(m, cJSON_Object);
        if (node != nullptr)
            build_children(m, node, simdjson::dom::object(v.get_object().value_unsafe()));
        return node;
    case element_type::ARRAY:
        node = new_node(m, cJSON_Array);
        if (node != nullptr)
            build_children(m, node, simdjson::dom::array(v.get_array().value_unsafe()));
        return node;
    case element_type::BOOL: return new_node(m, v.get_bool().value_unsafe() ? cJSON_True : cJSON_False);
    default: return new_node(m, cJSON_NULL);
    }
}

/* The whole tree, or NULL (nothing left to free) when memory ran out. */
cJSON *build_tree(maker &m, element root)
{
    cJSON *tree = build(m, root);
    if (!m.oom)
        return tree;
    if (m.alloc == nullptr)
        cJSON_Delete(tree);
    return nullptr;
}

/* simdjson reads the integer -0 as 0; cJSON keeps the sign (a double), and
 * the printer writes it back as -0. A text that may hold one (the bytes -0
 * not followed by a digit, '.', 'e' or 'E'; inside a string too, which
 * only costs the fallback) is left to cJSON. */
bool may_hold_negative_zero(const char *text, size_t len)
{
    /* memchr for the '-' (vectorised; glibc's memmem is not, for a short needle). */
    const char *p = text, *end = text + len;
    while ((p = static_cast<const char *>(memchr(p, '-', static_cast<size_t>(end - p)))) != nullptr) {
        if (++p == end || *p != '0')
            continue;
        if (++p == end || !(isdigit(static_cast<unsigned char>(*p)) || *p == '.' || *p == 'e' || *p == 'E'))
            return true;
    }
    return false;
}

/* A UTF-8 byte order mark before the text: cJSON skips one, and so does
 * the scan (some clients write one) rather than refuse a body cJSON took. */
bool has_bom(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0;
}

/* ---- picks: a few fields read where they lie ---- */

/* Keys are short: a byte loop costs less than a memcmp call. */
inline bool same_key(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* Fills the picks whose parent is `in` from obj's members, the first of a
 * duplicated name winning (as a tree lookup finds it), and descends into an
 * object some later pick names as its parent. Picks only name earlier
 * picks, so the depth is bounded by their number. */
void pick_members(const simdjson::dom::object &obj, long in, const prism_json_want *want, prism_json_field *got,
                  size_t n)
{
    for (auto kv : obj) {
        const char *key = kv.key.data();
        size_t len = kv.key.size();
        for (size_t i = 0; i < n; i++) {
            if (want[i].key_len != len || want[i].in != in || got[i].type != PRISM_JSON_ABSENT ||
                !same_key(key, want[i].key, len))
                continue;
            element v = kv.value;
            prism_json_field &f = got[i];
            switch (v.type()) {
            case element_type::STRING: {
                std::string_view str = v.get_string().value_unsafe();
                f.type = PRISM_JSON_STRING;
                f.string = str.data(); /* the parser keeps it NUL-terminated */
                f.len = str.size();
                break;
            }
            case element_type::INT64:
            case element_type::UINT64:
            case element_type::DOUBLE:
                f.type = PRISM_JSON_NUMBER;
                f.number = v.get_double().value_unsafe();
                break;
            case element_type::OBJECT: {
                simdjson::dom::object inner = v.get_object().value_unsafe();
                f.type = PRISM_JSON_OBJECT;
                f.count = count_of(inner);
                pick_members(inner, static_cast<long>(i), want, got, n);
                break;
            }
            case element_type::ARRAY:
                f.type = PRISM_JSON_ARRAY;
                f.count = count_of(simdjson::dom::array(v.get_array().value_unsafe()));
                break;
            case element_type::BOOL: f.type = v.get_bool().value_unsafe() ? PRISM_JSON_TRUE : PRISM_JSON_FALSE; break;
            default: f.type = PRISM_JSON_NULL; break;
            }
            f.times = 1;
            break;
        }
    }
}

} // namespace

struct prism_json_scanner {
    simdjson::dom::parser parser;
    unsigned long serial; /* counts the parser's readings: which one its tape holds */
};

/* malloc and free for the scanner itself, like every other core object
 * (simdjson's own buffers are its business). */
extern "C" prism_json_scanner *prism_json_scanner_new(void)
{
    void *mem = malloc(sizeof(prism_json_scanner));
    if (mem == nullptr)
        return nullptr;
    auto *s = new (mem) prism_json_scanner();
    if (s->parser.allocate(FIRST_CAPACITY, MAX_DEPTH) != simdjson::SUCCESS) {
        prism_json_scanner_free(s);
        return nullptr;
    }
    return s;
}

extern "C" void prism_json_scanner_free(prism_json_scanner *s)
{
    if (s == nullptr)
        return;
    s->~prism_json_scanner();
    free(s);
}

extern "C" prism_scan_result prism_json_scan(prism_json_scanner *s, const char *text, size_t len,
                                             prism_scan_alloc alloc, void *pool, prism_json_member **members,
                                             size_t *count, unsigned long *serial)
{
    sink out{alloc, pool, false};
    *members = nullptr;
    *count = 0;
    *serial = 0;
    if (has_bom(text, len)) {
        text += 3;
        len -= 3;
    }
    element root;
    simdjson::error_code e;
    if (len <= KEEP_CAPACITY) {
        e = read_text(s->parser, text, len, root);
        ++s->serial;
        *serial = e == simdjson::SUCCESS ? s->serial : 0;
        return e == simdjson::SUCCESS ? scan_root(root, out, members, count) : verdict(e);
    }
    simdjson::dom::parser big;
    if (big.allocate(len, MAX_DEPTH) != simdjson::SUCCESS)
        return PRISM_SCAN_NOMEM;
    e = read_text(big, text, len, root);
    return e == simdjson::SUCCESS ? scan_root(root, out, members, count) : verdict(e);
}

extern "C" cJSON *prism_json_tree(prism_json_scanner *s, const char *text, size_t len, unsigned long serial,
                                  prism_scan_alloc alloc, void *pool, int *unsure)
{
    element root;
    cJSON *tree = nullptr;
    maker m{alloc, pool, false, nullptr, 0};
    *unsure = 1;
    /* cJSON keeps a few quirks with a byte order mark (it refuses one
     * before a number): it decides those texts. */
    if (has_bom(text, len) || may_hold_negative_zero(text, len))
        return nullptr;
    if (serial != 0 && serial == s->serial) { /* the tape is still this text's */
        tree = build_tree(m, s->parser.doc.root());
    } else if (len <= KEEP_CAPACITY) {
        ++s->serial;
        if (read_text(s->parser, text, len, root) == simdjson::SUCCESS)
            tree = build_tree(m, root);
    } else {
        simdjson::dom::parser big;
        if (big.allocate(len, MAX_DEPTH) == simdjson::SUCCESS && read_text(big, text, len, root) == simdjson::SUCCESS)
            tree = build_tree(m, root);
    }
    if (tree != nullptr)
        *unsure = 0;
    return tree;
}

extern "C" int prism_json_pick(prism_json_scanner *s, const char *text, size_t len, const prism_json_want *want,
                               prism_json_field *got, size_t n)
{
    memset(got, 0, n * sizeof(*got));
    /* What the tree would decide differently (a byte order mark) or read
     * with a parser of its own (a long text) is left to the tree. A -0,
     * which a tree keeps negative, reads as 0 here. */
    if (len > KEEP_CAPACITY || has_bom(text, len))
        return -1;
    element root;
    simdjson::dom::object top;
    ++s->serial;
    if (read_text(s->parser, text, len, root) != simdjson::SUCCESS || root.get(top) != simdjson::SUCCESS)
        return -1;
    pick_members(top, -1, want, got, n);
    return 0;
}
