/* YAML text -> a small tree of positioned nodes (libyaml events), with
 * anchors, aliases and merge keys resolved and duplicate keys reported.
 * Also the loader's arena, which owns every node and model string. */
#include "orchestrator/compose/compose_impl.h"

#include <yaml.h>

/* ---- arena -------------------------------------------------------------- */

struct achunk {
	struct achunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct achunk *head;
};

struct arena *arena_new(void)
{
	return xcalloc(1, sizeof(struct arena));
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	for (struct achunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	n = (n + align - 1) & ~(align - 1);
	struct achunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 60000 ? n : 60000;
		c = xmalloc(sizeof(*c) + cap);
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return arena_strdup(a, s);
}

/* ---- nodes -------------------------------------------------------------- */

struct ynode *ynode_new(struct arena *a, enum ykind kind,
			const struct m_pos *pos)
{
	struct ynode *n = arena_alloc(a, sizeof(*n));
	n->kind = kind;
	if (pos)
		n->pos = *pos;
	n->s = "";
	return n;
}

struct ynode *yscalar_new(struct arena *a, const char *s,
			  const struct m_pos *pos)
{
	struct ynode *n = ynode_new(a, Y_SCALAR, pos);
	n->s = arena_strdup(a, s);
	n->quoted = true;
	return n;
}

struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	if (!map || map->kind != Y_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (streq(map->k[i]->s, key))
			return map->v[i];
	return NULL;
}

struct ynode *ymap_key(const struct ynode *map, const char *key)
{
	if (!map || map->kind != Y_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (streq(map->k[i]->s, key))
			return map->k[i];
	return NULL;
}

const char *ykind_name(const struct ynode *n)
{
	switch (n->kind) {
	case Y_NULL:
		return "null";
	case Y_SEQ:
		return "a sequence";
	case Y_MAP:
		return "a mapping";
	case Y_SCALAR:
		break;
	}
	return "a string";
}

int ybool(const struct ynode *n, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "y"};
	static const char *const no[] = {"false", "no", "off", "n"};
	if (n->kind != Y_SCALAR)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(n->s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(n->s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the parser --------------------------------------------------------- */

struct anchor {
	char *name;
	struct ynode *node;
};

struct yparser {
	yaml_parser_t p;
	struct arena *a;
	const char *file;
	struct orch_diag *d;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t nodes; /* budget against alias bombs */
	bool failed;
	/* The input, and a cursor that follows the events (which come in
	 * file order) to find a mark's byte offset in linear time. */
	const char *text;
	size_t len;
	size_t cur_line, cur_off;
};

static struct m_pos mark_pos(const struct yparser *y, yaml_mark_t m)
{
	return (struct m_pos){y->file, (int)m.line + 1, (int)m.column + 1};
}

static void yerror(struct yparser *y, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void yerror(struct yparser *y, yaml_mark_t m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	struct m_pos pos = mark_pos(y, m);
	diag_add(y->d, M_ERROR, &pos, "%s", msg);
	y->failed = true;
}

static int next_event(struct yparser *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->p, ev)) {
		const char *problem =
		    y->p.problem ? y->p.problem : "syntax error";
		if (y->p.context)
			yerror(y, y->p.problem_mark,
			       "YAML syntax error: %s (%s "
			       "started at line %d, column %d)",
			       problem, y->p.context,
			       (int)y->p.context_mark.line + 1,
			       (int)y->p.context_mark.column + 1);
		else
			yerror(y, y->p.problem_mark, "YAML syntax error: %s",
			       problem);
		return -EINVAL;
	}
	return 0;
}

static bool count_node(struct yparser *y, yaml_mark_t m)
{
	if (++y->nodes <= YAML_MAX_NODES)
		return true;
	if (!y->failed)
		yerror(y, m,
		       "document too large (more than %d nodes after "
		       "expanding aliases)",
		       YAML_MAX_NODES);
	return false;
}

/* Aliases are expanded into copies so that the tree stays a tree (later
 * steps rewrite scalars in place); the node budget bounds alias bombs. */
static struct ynode *copy_node(struct yparser *y, const struct ynode *n,
			       yaml_mark_t m)
{
	if (!count_node(y, m))
		return NULL;
	struct ynode *c = arena_alloc(y->a, sizeof(*c));
	*c = *n;
	if (n->n == 0)
		return c;
	c->v = arena_new_array(y->a, struct ynode *, n->n);
	if (n->kind == Y_MAP)
		c->k = arena_new_array(y->a, struct ynode *, n->n);
	for (size_t i = 0; i < n->n; i++) {
		c->v[i] = copy_node(y, n->v[i], m);
		if (!c->v[i])
			return NULL;
		if (n->kind == Y_MAP)
			c->k[i] = n->k[i]; /* keys are never rewritten */
	}
	return c;
}

static void set_anchor(struct yparser *y, const yaml_char_t *name,
		       struct ynode *n)
{
	if (!name)
		return;
	for (size_t i = 0; i < y->n_anchors; i++)
		if (streq(y->anchors[i].name, (const char *)name)) {
			y->anchors[i].node = n;
			return;
		}
	if (y->n_anchors == y->cap_anchors) {
		y->cap_anchors = y->cap_anchors ? 2 * y->cap_anchors : 16;
		y->anchors =
		    xrealloc(y->anchors, y->cap_anchors * sizeof(*y->anchors));
	}
	y->anchors[y->n_anchors++] =
	    (struct anchor){arena_strdup(y->a, (const char *)name), n};
}

static enum ytag tag_of(const yaml_char_t *tag)
{
	if (!tag)
		return YT_NONE;
	if (streq((const char *)tag, "!reset"))
		return YT_RESET;
	if (streq((const char *)tag, "!override"))
		return YT_OVERRIDE;
	return YT_NONE;
}

static bool is_null_text(const char *s)
{
	return !*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") ||
	       streq(s, "NULL");
}

/* A growable list of node pointers while a collection is being read. */
struct nvec {
	struct ynode **v;
	size_t n, cap;
};

static void nvec_push(struct nvec *nv, struct ynode *n)
{
	if (nv->n == nv->cap) {
		nv->cap = nv->cap ? 2 * nv->cap : 8;
		nv->v = xrealloc(nv->v, nv->cap * sizeof(*nv->v));
	}
	nv->v[nv->n++] = n;
}

static struct ynode **nvec_finish(struct arena *a, struct nvec *nv)
{
	struct ynode **out =
	    arena_new_array(a, struct ynode *, nv->n ? nv->n : 1);
	if (nv->n)
		memcpy(out, nv->v, nv->n * sizeof(*out));
	free(nv->v);
	*nv = (struct nvec){0};
	return out;
}

static struct ynode *parse_node(struct yparser *y, yaml_event_t *ev, int depth);

static int parse_seq(struct yparser *y, struct ynode *n, int depth)
{
	struct nvec items = {0};
	for (;;) {
		yaml_event_t ev;
		if (next_event(y, &ev) < 0) {
			free(items.v);
			return -EINVAL;
		}
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		struct ynode *item = parse_node(y, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!item) {
			free(items.v);
			return -EINVAL;
		}
		nvec_push(&items, item);
	}
	n->n = items.n;
	n->v = nvec_finish(y->a, &items);
	return 0;
}

/* Sorted view of a mapping's keys to find duplicates in O(n log n). */
static int key_cmp(const void *a, const void *b)
{
	const struct ynode *x = *(struct ynode *const *)a;
	const struct ynode *z = *(struct ynode *const *)b;
	int r = strcmp(x->s, z->s);
	if (r)
		return r;
	if (x->pos.line != z->pos.line)
		return x->pos.line - z->pos.line;
	return x->pos.col - z->pos.col;
}

static void check_duplicates(struct yparser *y, struct ynode *n)
{
	if (n->n < 2)
		return;
	if (n->n <= 16) {
		/* Small mappings, the common case: no sorting needed. */
		for (size_t i = 1; i < n->n; i++)
			for (size_t j = 0; j < i; j++)
				if (streq(n->k[i]->s, n->k[j]->s)) {
					diag_add(y->d, M_ERROR, &n->k[i]->pos,
						 "duplicate key \"%s\" (first "
						 "defined "
						 "at line %d)",
						 n->k[i]->s, n->k[j]->pos.line);
					y->failed = true;
					break;
				}
		return;
	}
	struct ynode **sorted = xmalloc(n->n * sizeof(*sorted));
	memcpy(sorted, n->k, n->n * sizeof(*sorted));
	qsort(sorted, n->n, sizeof(*sorted), key_cmp);
	for (size_t i = 1; i < n->n; i++) {
		if (!streq(sorted[i]->s, sorted[i - 1]->s))
			continue;
		size_t first = i - 1;
		while (first > 0 && streq(sorted[first - 1]->s, sorted[i]->s))
			first--;
		diag_add(y->d, M_ERROR, &sorted[i]->pos,
			 "duplicate key \"%s\" (first defined at line %d)",
			 sorted[i]->s, sorted[first]->pos.line);
		y->failed = true;
	}
	free(sorted);
}

static bool map_has(struct nvec *keys, const char *s)
{
	for (size_t i = 0; i < keys->n; i++)
		if (streq(keys->v[i]->s, s))
			return true;
	return false;
}

/* Merge keys: pairs of the merged mappings not already present are added;
 * explicit keys win, and earlier sources win over later ones. */
static void apply_merges(struct yparser *y, struct nvec *keys,
			 struct nvec *vals, struct nvec *merges)
{
	for (size_t m = 0; m < merges->n; m++) {
		struct ynode *src = merges->v[m];
		for (size_t i = 0; i < src->n; i++) {
			if (map_has(keys, src->k[i]->s))
				continue;
			nvec_push(keys, src->k[i]);
			nvec_push(vals, src->v[i]);
		}
	}
	(void)y;
}

static int collect_merge(struct yparser *y, struct ynode *v,
			 struct nvec *merges)
{
	if (v->kind == Y_MAP) {
		nvec_push(merges, v);
		return 0;
	}
	if (v->kind == Y_SEQ) {
		for (size_t i = 0; i < v->n; i++) {
			if (v->v[i]->kind != Y_MAP)
				goto bad;
			nvec_push(merges, v->v[i]);
		}
		return 0;
	}
bad:
	diag_add(y->d, M_ERROR, &v->pos,
		 "merge key \"<<\" needs a mapping or a list of mappings");
	y->failed = true;
	return 0;
}

static int parse_map(struct yparser *y, struct ynode *n, int depth)
{
	struct nvec keys = {0}, vals = {0}, merges = {0};
	int r = -EINVAL;
	for (;;) {
		yaml_event_t ev;
		if (next_event(y, &ev) < 0)
			goto out;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		yaml_mark_t kmark = ev.start_mark;
		bool merge_key = ev.type == YAML_SCALAR_EVENT &&
				 ev.data.scalar.plain_implicit &&
				 streq((char *)ev.data.scalar.value, "<<");
		struct ynode *k = parse_node(y, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!k)
			goto out;
		if (k->kind != Y_SCALAR && k->kind != Y_NULL) {
			yerror(y, kmark, "mapping keys must be strings, not %s",
			       ykind_name(k));
			goto out;
		}
		if (next_event(y, &ev) < 0)
			goto out;
		struct ynode *v = parse_node(y, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!v)
			goto out;
		if (merge_key) {
			collect_merge(y, v, &merges);
			continue;
		}
		nvec_push(&keys, k);
		nvec_push(&vals, v);
	}
	n->k = arena_new_array(y->a, struct ynode *, keys.n ? keys.n : 1);
	if (keys.n)
		memcpy(n->k, keys.v, keys.n * sizeof(*n->k));
	n->n = keys.n;
	check_duplicates(y, n);
	apply_merges(y, &keys, &vals, &merges);
	n->n = keys.n;
	n->k = nvec_finish(y->a, &keys);
	n->v = nvec_finish(y->a, &vals);
	r = 0;
out:
	free(keys.v);
	free(vals.v);
	free(merges.v);
	return r;
}

/* The byte offset of mark m: the cursor moves on to its line, then
 * counts its column in characters. */
static size_t mark_offset(struct yparser *y, yaml_mark_t m)
{
	if (m.line < y->cur_line) {
		y->cur_line = 0;
		y->cur_off = 0;
	}
	while (y->cur_line < m.line && y->cur_off < y->len) {
		const char *nl =
		    memchr(y->text + y->cur_off, '\n', y->len - y->cur_off);
		if (!nl)
			return y->len;
		y->cur_off = (size_t)(nl - y->text) + 1;
		y->cur_line++;
	}
	size_t off = y->cur_off;
	for (size_t col = 0; col < m.column && off < y->len; col++) {
		off++;
		while (off < y->len &&
		       ((unsigned char)y->text[off] & 0xc0) == 0x80)
			off++;
	}
	return off;
}

/* Keeps the source text of a scalar with a '$' in it (see ynode.raw). */
static void keep_raw(struct yparser *y, struct ynode *n, const yaml_event_t *ev)
{
	if (!y->text || !strchr(n->s, '$'))
		return;
	size_t from = mark_offset(y, ev->start_mark);
	size_t to = mark_offset(y, ev->end_mark);
	if (to <= from)
		return;
	n->raw = arena_strndup(y->a, y->text + from, to - from);
	n->raw_len = to - from;
}

/* Builds the node that starts with ev (already read). */
static struct ynode *parse_node(struct yparser *y, yaml_event_t *ev, int depth)
{
	if (depth > YAML_MAX_DEPTH) {
		yerror(y, ev->start_mark, "nesting deeper than %d levels",
		       YAML_MAX_DEPTH);
		return NULL;
	}
	if (!count_node(y, ev->start_mark))
		return NULL;
	struct m_pos pos = mark_pos(y, ev->start_mark);
	struct ynode *n;
	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		for (size_t i = y->n_anchors; i-- > 0;)
			if (streq(y->anchors[i].name, name))
				return copy_node(y, y->anchors[i].node,
						 ev->start_mark);
		yerror(y, ev->start_mark, "unknown anchor \"%s\" in alias",
		       name);
		return NULL;
	}
	case YAML_SCALAR_EVENT: {
		const char *tag = (const char *)ev->data.scalar.tag;
		bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			     !(tag && streq(tag, YAML_STR_TAG));
		const char *s = (const char *)ev->data.scalar.value;
		bool null = plain && is_null_text(s);
		if (tag && streq(tag, YAML_NULL_TAG))
			null = true;
		n = ynode_new(y->a, null ? Y_NULL : Y_SCALAR, &pos);
		n->s = arena_strndup(y->a, s, ev->data.scalar.length);
		n->quoted = !plain;
		n->tag = tag_of(ev->data.scalar.tag);
		keep_raw(y, n, ev);
		set_anchor(y, ev->data.scalar.anchor, n);
		return n;
	}
	case YAML_SEQUENCE_START_EVENT:
		n = ynode_new(y->a, Y_SEQ, &pos);
		n->tag = tag_of(ev->data.sequence_start.tag);
		if (parse_seq(y, n, depth) < 0)
			return NULL;
		set_anchor(y, ev->data.sequence_start.anchor, n);
		return n;
	case YAML_MAPPING_START_EVENT:
		n = ynode_new(y->a, Y_MAP, &pos);
		n->tag = tag_of(ev->data.mapping_start.tag);
		if (parse_map(y, n, depth) < 0)
			return NULL;
		set_anchor(y, ev->data.mapping_start.anchor, n);
		return n;
	default:
		yerror(y, ev->start_mark, "unexpected YAML event");
		return NULL;
	}
}

int yaml_load(struct arena *a, const char *file, const char *text, size_t len,
	      struct ynode ***roots, struct orch_diag *d)
{
	struct yparser y = {
	    .a = a, .file = file, .d = d, .text = text, .len = len};
	struct nvec docs = {0};
	int r = -EINVAL;
	if (!yaml_parser_initialize(&y.p))
		abort();
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_t ev;
		if (next_event(&y, &ev) < 0)
			goto out;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			if (next_event(&y, &ev) < 0)
				goto out;
			struct ynode *root = NULL;
			if (ev.type != YAML_DOCUMENT_END_EVENT) {
				root = parse_node(&y, &ev, 0);
				yaml_event_delete(&ev);
				if (!root)
					goto out;
				if (next_event(&y, &ev) < 0)
					goto out;
			}
			yaml_event_delete(&ev); /* document end */
			/* Anchors do not cross documents. */
			y.n_anchors = 0;
			if (root && root->kind == Y_NULL)
				root = NULL;
			nvec_push(&docs, root);
			continue;
		}
		yaml_event_delete(&ev); /* stream start */
	}
	/* Duplicate keys and bad merge keys leave a usable tree: keep it so
	 * that later steps can report their errors too. */
	r = (int)docs.n;
	*roots = nvec_finish(a, &docs);
out:
	free(docs.v);
	free(y.anchors);
	yaml_parser_delete(&y.p);
	return r;
}
