/* Private to the compose loader (yaml.c, interp.c, merge.c, compose.c,
 * validate.c, project.c, emit.c): the arena, the positioned YAML node tree
 * and the steps' entry points.  Nothing outside the loader includes it. */
#ifndef ORCH_COMPOSE_IMPL_H
#define ORCH_COMPOSE_IMPL_H

#include "orchestrator/compose/compose.h"

/* ---- arena: everything a project owns lives in one ------------------- */

struct arena;
struct arena *arena_new(void);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n); /* zeroed, aligned */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define arena_new_array(a, type, n)                                            \
	((type *)arena_alloc((a), sizeof(type) * (n)))

/* ---- the YAML node tree ---------------------------------------------- */

enum ykind { Y_NULL, Y_SCALAR, Y_SEQ, Y_MAP };
enum ytag { YT_NONE, YT_RESET, YT_OVERRIDE };

struct ynode {
	enum ykind kind;
	enum ytag tag;
	bool quoted; /* a non-plain scalar (or !!str): always a string */
	struct m_pos pos;
	char *s; /* scalar text ("" or "null"... for Y_NULL) */
	/* A scalar holding a '$': its source text from pos on, so that an
	 * interpolation error can point at the '$' itself. */
	const char *raw;
	size_t raw_len;
	size_t n;	  /* items (sequence) or pairs (mapping) */
	struct ynode **k; /* mapping keys (scalars) */
	struct ynode **v; /* sequence items or mapping values */
};

/* Limits that keep hostile input (alias bombs, deep nesting) cheap. */
#define YAML_MAX_DEPTH 200
#define YAML_MAX_NODES 500000

/* Parses text into one root per document (NULL for an empty document).
 * Anchors, aliases and merge keys (<<) are resolved; duplicate keys,
 * syntax errors and non-scalar keys are reported to d.  Returns the
 * number of documents, or -EINVAL after an error. */
int yaml_load(struct arena *a, const char *file, const char *text, size_t len,
	      struct ynode ***roots, struct orch_diag *d);

struct ynode *ymap_get(const struct ynode *map, const char *key);
/* The key node itself (for positions of keys). */
struct ynode *ymap_key(const struct ynode *map, const char *key);
const char *ykind_name(const struct ynode *n);
/* Plain YAML booleans as compose accepts them (true/false/yes/no/on/off). */
int ybool(const struct ynode *n, bool *out);
struct ynode *ynode_new(struct arena *a, enum ykind kind,
			const struct m_pos *pos);
struct ynode *yscalar_new(struct arena *a, const char *s,
			  const struct m_pos *pos);

/* ---- interpolation and env files -------------------------------------- */

/* A variable lookup table: "K=V" entries, earlier ones win. */
struct envmap {
	char **v;
	size_t n, cap;
};
const char *env_get(const struct envmap *e, const char *key);
void env_set(struct arena *a, struct envmap *e, const char *key,
	     const char *value); /* adds or replaces */

/* Interpolates s (compose's rules: a '$' not followed by a name, '{' or
 * '$' is kept as it is).  Returns the result, or NULL after reporting an
 * error at pos. */
char *interp_string(struct arena *a, const char *s, const struct envmap *env,
		    const struct m_pos *pos, struct orch_diag *d);
/* The same for a scalar node: an error points at the '$' that starts
 * the bad expression, using the node's source text. */
char *interp_node(struct arena *a, const struct ynode *n,
		  const struct envmap *env, struct orch_diag *d);
/* Interpolates every scalar value (not keys) in the tree in place. */
/* The variables n's scalars name, into out (config --variables). */
void interp_collect(const struct ynode *n, struct compose_vars *out);
void interp_tree(struct arena *a, struct ynode *n, const struct envmap *env,
		 struct orch_diag *d);

/* Parses an env file (compose's .env syntax: comments, quotes, export,
 * ${} expansion against lookup and earlier lines) and adds each
 * variable to out in order (replacing an earlier one of the same name).
 * Errors go to d at file:line. Returns 0 or -errno. */
int envfile_parse(struct arena *a, const char *file, const char *text,
		  const struct envmap *lookup, struct m_kvlist *out,
		  struct orch_diag *d);
/* The same for an env_file of format: raw: KEY=VALUE lines whose value is
 * taken as written (no quotes removed, nothing expanded); blank lines and
 * lines starting with # are skipped. */
int envfile_parse_raw(struct arena *a, const char *file, const char *text,
		      struct m_kvlist *out, struct orch_diag *d);

/* ---- merge -------------------------------------------------------------- */

/* Merges the top-level mapping over into base (the Compose Specification's
 * rules: maps merge, scalars replace, sequences by their kind); returns the
 * merged root (base may be NULL). */
struct ynode *merge_roots(struct arena *a, struct ynode *base,
			  struct ynode *over, struct orch_diag *d);

/* One service's mapping over another's (extends), by the same rules. */
struct ynode *merge_service_nodes(struct arena *a, struct ynode *base,
				  struct ynode *over);

/* ---- files read while loading one (extends.c, include.c) --------------- */

/* How a file is read: its variables and whether to interpolate. */
struct compose_read {
	const struct envmap *env;
	bool interpolate;
	const char *home;
};
/* The file at path parsed (its documents merged) and interpolated;
 * NULL after an error (reading it is reported at from). */
struct ynode *compose_read(struct arena *a, const char *path,
			   const struct compose_read *rd,
			   const struct m_pos *from, struct orch_diag *d);
/* Relative paths (build contexts, bind sources, env_file, configs and
 * secrets files) made absolute against dir, in place. */
void rebase_service_paths(struct arena *a, struct ynode *svc, const char *dir);
void rebase_paths(struct arena *a, struct ynode *root, const char *dir);
/* Applies every service's extends in root (the file path, whose
 * relative extends files resolve in dir), in place. */
void extends_apply(struct arena *a, struct ynode *root, const char *path,
		   const char *dir, const struct compose_read *rd,
		   struct orch_diag *d);
/* Loads what root's include names and brings its resources into root
 * (path is root's file, dir where its relative paths resolve); the
 * include key is removed. */
void include_apply(struct arena *a, struct ynode *root, const char *path,
		   const char *dir, const struct compose_read *rd,
		   struct orch_diag *d);

/* ---- value syntaxes (values.c) ----------------------------------------- */

int proto_parse(const char *s, enum m_proto *p);
const char *proto_name(enum m_proto p);
bool ip_valid(const char *s, int *family);
/* Short port syntax; on error *why says what is wrong. */
int port_parse_spec(struct arena *a, const char *spec, struct m_port **out,
		    size_t *n_out, const char **why);
int port_parse_published(const char *s, uint16_t *lo, uint16_t *hi);
char *path_clean(struct arena *a, const char *path);
char *path_resolve(struct arena *a, const char *base, const char *home,
		   const char *p);
int cidr_parse(const char *s, int *family, unsigned char addr[16], int *prefix);
bool prefix_match(const unsigned char *a, const unsigned char *b, int bits);

/* Sets key in a list (replacing an earlier value, keeping its place). */
void kv_set(struct arena *a, struct m_kvlist *l, const char *key,
	    const char *value, const struct m_pos *pos);
const struct m_kv *kv_get(const struct m_kvlist *l, const char *key);

/* ---- conversion: node tree -> model ----------------------------------- */

struct cctx {
	struct arena *a;
	struct orch_diag *d;
	const struct envmap *env; /* for unset-valued environment entries */
	const char *workdir;	  /* relative paths resolve here */
	const char *home;	  /* "~" in paths */
	const char *project;	  /* the project name (object names) */
	bool defer_env_files;	  /* see compose_opts */
	struct strbuf path;	  /* "services.web.ports[0]" for messages */
	size_t n_ports;		  /* ports and expose entries so far */
};

/* Errors about node n, prefixed with the current path. */
void cerr(struct cctx *c, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cerr at item i of the sequence n, whose path it ends with "[i]". */
void cerr_item(struct cctx *c, const struct ynode *n, size_t i,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
size_t cpath_push(struct cctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cpath_pop(struct cctx *c, size_t len);

/* Typed reads of a node; on a wrong type they report and return false /
 * NULL, leaving *out untouched. */
char *c_str(struct cctx *c, const struct ynode *n);
bool c_int(struct cctx *c, const struct ynode *n, int64_t min, int64_t max,
	   int64_t *out);
bool c_bool(struct cctx *c, const struct ynode *n, bool *out);
bool c_double(struct cctx *c, const struct ynode *n, double *out);
bool c_bytes(struct cctx *c, const struct ynode *n, bool allow_minus1,
	     int64_t *out);
bool c_duration(struct cctx *c, const struct ynode *n, int64_t *out);
char **c_strlist(struct cctx *c, const struct ynode *n, bool allow_string);
bool c_map(struct cctx *c, const struct ynode *n);
/* A MAC address (mac_parse's), as written; NULL and reported if not. */
char *c_mac(struct cctx *c, const struct ynode *n);
enum kvmode { KV_ENV, KV_LABELS, KV_HOSTS, KV_OPTS };
void c_kvlist(struct cctx *c, const struct ynode *n, enum kvmode mode,
	      struct m_kvlist *out);
/* Reports keys of map n not in names (x- keys are free). */
void c_known_keys(struct cctx *c, const struct ynode *n,
		  const char *const *names, size_t count);
/* Warns, once per key present in n, that one of these keys (which
 * c_known_keys accepts) has no effect in orch. */
void c_ignored_keys(struct cctx *c, const struct ynode *n,
		    const char *const *names, size_t count);

/* Fills p's services/networks/volumes/configs/secrets from the merged
 * root; errors (types, unknown keys, bad values) go to c->d. */
void compose_convert(struct cctx *c, const struct ynode *root,
		     struct project *p);
/* One service's mapping -> s (compose_svc.c). */
void convert_service(struct cctx *c, const struct ynode *name,
		     const struct ynode *n, struct service *s);
/* A port in long syntax (a mapping); false after reporting an error. */
bool port_parse_long(struct cctx *c, const struct ynode *n, struct m_port *p);
/* Whether a service key's sequence merges item by item with a key
 * (ports, volumes, devices, configs, secrets, unique lists like dns). */
bool merge_is_keyed(const char *key);
/* That key for one item (published port, target...); NULL when the item
 * has none (it is then appended). */
const char *merge_item_key(struct arena *a, const char *key,
			   const struct ynode *item);

/* Levenshtein-based suggestion among names; NULL when nothing is close. */
const char *did_you_mean(const char *word, const char *const *names, size_t n);

/* read_file for regular files only (env files, compose files). */
int read_regular_file(const char *path, char **out, size_t *len,
		      struct orch_err *e);

/* ---- validation (needs the whole project) ----------------------------- */

/* read_diags: how many of d's entries came from reading the files
 * (include, extends), before they were converted. */
void validate_project(struct project *p, struct orch_diag *d,
		      size_t read_diags);
/* Values that reach the host or a generated file (sysctls, host names,
 * addresses, working_dir, memory) and the project's counts; run on every
 * load (compose_check.c). */
void compose_check_values(struct project *p, struct orch_diag *d);

/* ---- the service keys (compose_svc.c, svc_wiring.c, svc_runtime.c) ---- */

/* Arrays built one element at a time keep a power-of-two capacity. */
void *arena_grow(struct arena *a, void *arr, size_t n, size_t elem);
#define PUSH(a, arr, n)                                                        \
	((arr) = arena_grow((a), (arr), (n), sizeof(*(arr))), &(arr)[(n)++])

/* Items of a sequence, with the path following along. */
#define EACH_ITEM(c, n, i, l)                                                  \
	for (size_t i = 0, l = 0; i < (n)->n; i++)                             \
		if ((l = cpath_push((c), "[%zu]", i)), true)

/* Whether n is a sequence; says so when it is not. */
bool want_seq(struct cctx *c, const struct ynode *n);
/* s, or its first 56 bytes and "..." when long, for messages. */
const char *shown_value(const char *s);

/* The handlers of service keys, one per key, that compose_svc.c's key
 * table calls with the key's value: how a service runs (svc_runtime.c) */
void svc_healthcheck(struct cctx *c, struct service *s, const struct ynode *n);
void svc_restart(struct cctx *c, struct service *s, const struct ynode *n);
void svc_deploy(struct cctx *c, struct service *s, const struct ynode *n);
void svc_build(struct cctx *c, struct service *s, const struct ynode *n);
void svc_logging(struct cctx *c, struct service *s, const struct ynode *n);
void svc_ulimits(struct cctx *c, struct service *s, const struct ynode *n);
void svc_blkio(struct cctx *c, struct service *s, const struct ynode *n);
void svc_configs(struct cctx *c, struct service *s, const struct ynode *n);
void svc_secrets(struct cctx *c, struct service *s, const struct ynode *n);
/* and how it is wired to the rest (svc_wiring.c). */
void svc_ports(struct cctx *c, struct service *s, const struct ynode *n);
void svc_expose(struct cctx *c, struct service *s, const struct ynode *n);
void svc_volumes(struct cctx *c, struct service *s, const struct ynode *n);
void svc_networks(struct cctx *c, struct service *s, const struct ynode *n);
void svc_depends_on(struct cctx *c, struct service *s, const struct ynode *n);
/* A named volume's name as docker allows it in a service's volumes. */
bool volume_name_ok(const char *s);

#endif
