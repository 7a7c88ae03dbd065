/* orchestrator/compose — the Compose Specification, and this folder's one
 * public header: compose files (with their .env, env files, extends and
 * include) in, the project model and diagnostics naming file, line and
 * column out; the normalized file back out (`orch config`) and the
 * link-only policy over the model.  It depends on common/ only.
 *
 * The project model: what compose files mean once loaded, interpolated,
 * merged, validated and normalized.  Every other part of the orchestrator
 * works from this model and never from YAML.
 *
 * Ownership: a struct project owns everything reachable from it (strings,
 * arrays, positions); free it with project_free() and never free or
 * reallocate its parts.  Strings are NUL-terminated; string lists (char **)
 * are NULL-terminated; arrays come with a count.
 *
 * Conventions: "unset" integers and durations are M_UNSET (-1); unset
 * strings are NULL; a NULL string list means "not given" and an empty one
 * (list[0] == NULL) means "given empty" (e.g. `command: []`).
 *
 * Every element keeps where it was written (struct m_pos): the file, the
 * 1-based line and column of its key or list item, in the file that won
 * the merge.  Services also record the position of each of their keys
 * (service_key_pos). */
#ifndef ORCH_COMPOSE_H
#define ORCH_COMPOSE_H

#include "common/common.h"

#define M_UNSET (-1)

struct m_pos {
	const char *file; /* absolute path, or "-" for standard input */
	int line, col;	  /* 1-based; 0 when not from a file */
};

/* A key with an optional value: environment, labels, sysctls, args,
 * driver_opts, extra_hosts (key = host, value = address).  value == NULL
 * for an environment variable named without a value and not found. */
struct m_kv {
	char *key;
	char *value;
	struct m_pos pos;
};
struct m_kvlist {
	struct m_kv *v;
	size_t n;
};

/* ---- services -------------------------------------------------------- */

enum m_proto { M_PROTO_TCP, M_PROTO_UDP, M_PROTO_SCTP };

/* A port as compose normalizes it: one container port per entry (short
 * ranges like "8000-8001:80-81" are expanded, as compose does); the host
 * side is a range, published..published_end, from which any free port may
 * be used ("8000-8010:80"); both equal for a single port, both 0 when not
 * published (the host picks an ephemeral port). */
struct m_port {
	char *host_ip; /* NULL = all addresses */
	uint16_t target;
	uint16_t published, published_end;
	enum m_proto protocol;
	char *mode;	    /* "ingress" (default) or "host" */
	char *name;	    /* long syntax only, else NULL */
	char *app_protocol; /* long syntax only, else NULL */
	struct m_pos pos;
};

enum m_mount_type {
	M_MOUNT_VOLUME, /* source = project volume key, NULL = anonymous */
	M_MOUNT_BIND,	/* source = absolute host path */
	M_MOUNT_TMPFS,	/* source = NULL */
	M_MOUNT_IMAGE,
	M_MOUNT_NPIPE,
	M_MOUNT_CLUSTER,
};

struct m_mount {
	enum m_mount_type type;
	char *source;
	char *target; /* absolute path in the container */
	bool read_only;
	char *consistency;
	/* bind */
	char *bind_propagation;	    /* NULL or "rprivate", "shared", ... */
	bool bind_create_host_path; /* short syntax: true */
	char *bind_selinux;	    /* NULL, "z" or "Z" */
	/* volume */
	bool volume_nocopy;
	char *volume_subpath;
	/* tmpfs: size in bytes and mode; M_UNSET when not given */
	int64_t tmpfs_size;
	int64_t tmpfs_mode;
	struct m_pos pos;
};

/* A service's attachment to one network (the key of project networks). */
struct m_svc_net {
	char *name;
	char **aliases;
	char *ipv4_address, *ipv6_address;
	char **link_local_ips;
	char *mac_address;
	int64_t priority; /* M_UNSET when not given */
	struct m_pos pos;
};

enum m_dep_cond {
	M_DEP_STARTED,	 /* service_started (default) */
	M_DEP_HEALTHY,	 /* service_healthy */
	M_DEP_COMPLETED, /* service_completed_successfully */
};

struct m_dep {
	char *service;
	enum m_dep_cond condition;
	bool restart;  /* restart this service when the dependency restarts */
	bool required; /* default true */
	struct m_pos pos;
};

struct m_healthcheck {
	bool present; /* a healthcheck key was given */
	bool disable; /* disable: true, or test: ["NONE"] */
	char **test;  /* ["CMD", ...] or ["CMD-SHELL", "cmd"]; NULL = image's */
	int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns;
	int64_t retries; /* M_UNSET = image's/default */
	struct m_pos pos;
};

enum m_restart {
	M_RESTART_NO,
	M_RESTART_ALWAYS,
	M_RESTART_ON_FAILURE,
	M_RESTART_UNLESS_STOPPED,
};

struct m_restart_policy {
	bool present;
	enum m_restart policy;
	int64_t max_retries; /* on-failure:N, else M_UNSET */
	struct m_pos pos;
};

/* cgroup-style limits; M_UNSET (or cpus < 0) when not given. */
struct m_resources {
	double cpus;
	int64_t memory; /* bytes */
	int64_t pids;
};

struct m_deploy {
	bool present;
	char *mode;	  /* "replicated" / "global" or NULL */
	int64_t replicas; /* M_UNSET when not given */
	struct m_resources limits, reservations;
	struct {
		bool present;
		char *condition; /* "none", "on-failure", "any" */
		int64_t delay_ns, window_ns, max_attempts;
	} restart_policy;
	struct m_kvlist labels;
	struct m_pos pos;
};

struct m_file_ref {
	char *source;
	char *target; /* NULL when not given */
	char *uid, *gid;
	int64_t mode; /* M_UNSET when not given */
	struct m_pos pos;
};

struct m_build {
	bool present;
	char *context;	  /* absolute path (or a URL, kept as is) */
	char *dockerfile; /* as written, relative to context */
	char *dockerfile_inline;
	struct m_kvlist args;
	struct m_kvlist labels;
	/* additional_contexts: name -> an absolute directory,
	 * "docker-image://REF" or "service:NAME" (another service's
	 * image); other URLs are kept as written (refused at build). */
	struct m_kvlist contexts;
	char *target;
	char *network;
	char **cache_from;
	char **tags;
	struct m_file_ref *secrets; /* for RUN --mount=type=secret */
	size_t n_secrets;
	int64_t shm_size; /* M_UNSET when not given */
	struct m_kvlist extra_hosts; /* for RUN steps' /etc/hosts */
	struct m_ulimit *ulimits;    /* for RUN steps */
	size_t n_ulimits;
	struct m_kvlist ssh; /* ID -> agent socket ("default": none given) */
	bool no_cache;	  /* every step run again */
	bool pull;	  /* base images pulled again, even when stored */
	struct m_pos pos;
};

/* A lifecycle hook (post_start, pre_stop, pre_start): a command run in
 * the service's container. */
struct m_hook {
	char **command;
	char *user;
	char *working_dir;
	bool privileged;
	struct m_kvlist environment;
	struct m_pos pos;
};

/* A develop.watch rule. */
enum m_watch_action {
	M_WATCH_SYNC,
	M_WATCH_REBUILD,
	M_WATCH_SYNC_RESTART,
	M_WATCH_RESTART,
	M_WATCH_SYNC_EXEC,
	M_WATCH_NACTIONS
};
struct m_watch {
	enum m_watch_action action;
	char *path;   /* absolute, on the host */
	char *target; /* absolute, in the container (sync actions) */
	char **ignore; /* .dockerignore patterns, relative to path */
	char **include; /* the same, of what counts (NULL: everything) */
	bool initial_sync; /* the path synced when watching starts */
	struct m_hook *exec; /* sync+exec: run in each container after */
	struct m_pos pos;
};
extern const char *const m_watch_actions[M_WATCH_NACTIONS];

struct m_ulimit {
	char *name; /* "nofile", "nproc", ... */
	int64_t soft, hard;
	struct m_pos pos;
};

/* blkio_config: a weight for every device, and per device a weight or a
 * limit, the lists in m_blkio_lists' order. */
enum m_blkio_list {
	M_BLKIO_WEIGHT_DEVICE, M_BLKIO_READ_BPS, M_BLKIO_WRITE_BPS,
	M_BLKIO_READ_IOPS, M_BLKIO_WRITE_IOPS, M_BLKIO_NLISTS
};
extern const char *const m_blkio_lists[M_BLKIO_NLISTS];
struct m_blkio_dev {
	char *path; /* a block device of the host */
	int64_t value; /* weight, bytes or operations per second */
	struct m_pos pos;
};
struct m_blkio {
	int64_t weight; /* M_UNSET when not given */
	struct m_blkio_dev *dev[M_BLKIO_NLISTS];
	size_t n_dev[M_BLKIO_NLISTS];
};

struct m_logging {
	char *driver; /* NULL when not given */
	struct m_kvlist options;
};

/* A service's use of a project config or secret. */


/* Where a key of a service was written (after merging). */
struct m_keypos {
	const char *key;
	struct m_pos pos;
};

struct service {
	char *name;
	struct m_pos pos; /* the service's name in services: */

	char *image; /* NULL when only build: is given */
	struct m_build build;
	char *pull_policy;
	int64_t pull_refresh_after_ns; /* pull_policy refresh's; M_UNSET */
	char *platform;
	char **command;	   /* NULL = image's CMD; shell strings are split */
	char **entrypoint; /* NULL = image's ENTRYPOINT */

	/* env_file files (in order), then environment:, with .env-style
	 * parsing; later entries override earlier ones. */
	struct m_kvlist environment;
	/* post_start after each start by orch (up, start, restart);
	 * pre_stop before each stop (stop, restart, down, a recreate);
	 * pre_start in a one-off container of the service before its
	 * container is created. */
	struct m_hook *post_start, *pre_stop, *pre_start;
	size_t n_post_start, n_pre_stop, n_pre_start;
	/* develop.watch: what `orch watch` and `up --watch` follow. */
	struct m_watch *watch;
	size_t n_watch;
	struct m_env_file {
		char *path; /* absolute */
		bool required;
		char *format;
	} *env_files; /* as given, for config's output */
	size_t n_env_files;

	struct m_port *ports;
	size_t n_ports;
	char **expose; /* "80", "8000-8010", "53/udp" */

	struct m_mount *volumes;
	size_t n_volumes;
	char **volumes_from;
	char **tmpfs; /* "/run" or "/run:size=64m" as written */

	/* Networks the service joins; filled with "default" when it gives
	 * none and has no network_mode.  Sorted by name. */
	struct m_svc_net *networks;
	size_t n_networks;
	char *network_mode; /* "none", "host", "bridge", "service:x",
			     * "container:x"; NULL = networks above */
	char **links;	    /* "svc" or "svc:alias" */
	char **external_links;
	struct m_kvlist extra_hosts; /* key = host name, value = address */
	char **dns, **dns_search, **dns_opt;
	char *hostname, *domainname, *mac_address;

	struct m_dep *depends_on; /* sorted by service name */
	size_t n_depends_on;

	struct m_healthcheck healthcheck;
	struct m_restart_policy restart;
	struct m_deploy deploy;
	int64_t scale; /* M_UNSET when not given */

	/* Resources; M_UNSET when not given (cpus < 0).  See
	 * service_limits() for the effective values with deploy: merged. */
	int64_t mem_limit, memswap_limit, mem_reservation, shm_size;
	int64_t cpu_shares, pids_limit, oom_score_adj;
	double cpus;
	int64_t cpu_period, cpu_quota; /* microseconds: cpus = quota/period */
	char *cpuset;
	int64_t mem_swappiness; /* 0..100, M_UNSET when not given */
	bool oom_kill_disable;
	struct m_blkio blkio;

	char **cap_add, **cap_drop;
	bool privileged;
	char **security_opt;
	bool read_only;
	char *user;
	char **group_add;
	char *working_dir;
	bool init;
	char *stop_signal;	      /* as written, NULL = SIGTERM */
	int64_t stop_grace_period_ns; /* M_UNSET = 10s */
	struct m_ulimit *ulimits;
	size_t n_ulimits;
	struct m_kvlist sysctls;
	char **devices;
	char **device_cgroup_rules;

	struct m_kvlist labels;
	struct m_kvlist annotations;
	char **profiles;
	char *container_name;
	char *pid, *ipc, *cgroup, *cgroup_parent, *userns_mode, *uts;
	bool tty, stdin_open;
	/* attach: false: an attached up does not show its logs (unless
	 * --attach names it). */
	bool no_attach;
	struct m_logging logging;
	struct m_file_ref *configs, *secrets;
	size_t n_configs, n_secrets;

	struct m_keypos *keys;
	size_t n_keys;

	/* With compose_opts.defer_env_files: why a required env_file could
	 * not be read (NULL when all were), and where it is named. */
	char *env_file_error;
	struct m_pos env_file_error_pos;
};

/* ---- top-level objects ----------------------------------------------- */

struct m_ipam_pool {
	char *subnet, *gateway, *ip_range; /* as written, validated CIDR/IP */
	struct m_kvlist aux_addresses;
	struct m_pos pos;
};

struct network {
	char *key;    /* the name in the compose file */
	char *name;   /* actual name: name:, else <project>_<key> */
	char *driver; /* NULL = bridge */
	bool external, internal, attachable, enable_ipv6;
	bool ipv4_off; /* enable_ipv4: false (an IPv6-only network) */
	char *ipam_driver;
	struct m_ipam_pool *ipam;
	size_t n_ipam;
	struct m_kvlist driver_opts, labels;
	struct m_pos pos;
};

struct volume {
	char *key;
	char *name;   /* name:, else <project>_<key> */
	char *driver; /* NULL = local */
	bool external;
	struct m_kvlist driver_opts, labels;
	struct m_pos pos;
};

/* configs: and secrets: (file-based; environment/content kept too). */
struct m_file_obj {
	char *key;
	char *name;	   /* name:, else <project>_<key> */
	char *file;	   /* absolute path */
	char *environment; /* variable name */
	char *env_value;   /* its value when loaded, NULL when unset */
	char *content;
	bool external;
	struct m_kvlist labels;
	struct m_pos pos;
};

struct project {
	char *name;	   /* normalized: [a-z0-9][a-z0-9_-]* */
	char *working_dir; /* absolute project directory */
	char **files;	   /* absolute paths of the files loaded, "-" = stdin */
	char **profiles;   /* active profiles */

	/* Active services (profiles applied), sorted by name. */
	struct service *services;
	size_t n_services;
	/* Services left out by profiles; same shape. */
	struct service *disabled;
	size_t n_disabled;

	struct network *networks; /* sorted by key; includes "default" */
	size_t n_networks;
	struct volume *volumes;
	size_t n_volumes;
	struct m_file_obj *configs, *secrets;
	size_t n_configs, n_secrets;

	bool raw; /* loaded with no_interpolate: values keep their ${...} */
	/* The merged, interpolated file: config's output takes the x-*
	 * extensions from it. */
	const struct ynode *root;
	struct arena *arena; /* private to the loader */
};

/* ---- diagnostics ----------------------------------------------------- */

enum m_severity { M_ERROR, M_WARNING };

struct m_diag {
	enum m_severity severity;
	char *file; /* NULL when the message is about no file */
	int line, col;
	char *msg;
};

/* Everything wrong with the input, not only the first thing. */
struct orch_diag {
	struct m_diag *v;
	size_t n;
	size_t n_errors;
};

/* "file:line:col: message" per entry (warnings prefixed "warning: "). */
void diag_print(const struct orch_diag *d, FILE *f);
void diag_free(struct orch_diag *d);
/* Adds one message; pos may be NULL. */
void diag_add(struct orch_diag *d, enum m_severity sev, const struct m_pos *pos,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- the loader ------------------------------------------------------ */

struct compose_opts {
	/* -f values in order; NULL = discover compose.yaml & co. (and the
	 * .override partner) in project_dir or the working directory and
	 * its parents.  "-" reads stdin_fd. */
	char **files;
	/* When non-NULL, contents[i] is the text of files[i] (nothing is
	 * read from disk for it): for tests and fuzzing. */
	const char *const *contents;
	int stdin_fd;		  /* for "-"; 0 = standard input */
	const char *project_name; /* -p */
	const char *project_dir;  /* --project-directory; NULL = the first
				   * file's directory */
	char **env_files;  /* --env-file; NULL = <project_dir>/.env if any */
	char **profiles;   /* --profile; COMPOSE_PROFILES when NULL */
	bool all_profiles; /* activate every service (e.g. for down) */
	/* "K=V" list used for interpolation and unset-valued environment
	 * entries; NULL = the process environment.  Values from the
	 * env files fill in only what this does not define. */
	char **environ;
	bool no_interpolate;
	/* Skip consistency checks (undefined references, cycles, port
	 * clashes...); syntax, types and values are still checked. */
	bool no_consistency;
	/* A required env_file that cannot be read is no error here: the
	 * service records it (env_file_error), and only the commands that
	 * need that service's environment fail (project_env_check). */
	bool defer_env_files;
	/* A document merged after the files, as one more override file
	 * (named extra_name in messages): what `run` adds from its command
	 * line. */
	const char *extra, *extra_name;
	/* Set (with no_interpolate): the files are read (includes too) and
	 * their variables collected here; no project is made (*out NULL). */
	struct compose_vars *vars;
};

/* config --variables and --environment: the variables the files name,
 * with the default (${X:-d}), the alternate value (${X:+a}) and whether
 * one is required (${X:?why}); env: what interpolation sees ("K=V"). */
struct compose_var {
	char *name, *default_value, *alternate;
	bool required;
};
struct compose_vars {
	struct compose_var *v;
	size_t n;
	char **env;
};
void compose_vars_clear(struct compose_vars *v);

/* Loads, interpolates, merges, validates and normalizes.  Returns 0 and
 * *out on success (warnings may be in diags); on any error returns a
 * negative errno, *out = NULL, and every error found is in diags. */
int compose_load(const struct compose_opts *o, struct project **out,
		 struct orch_diag *diags);
void project_free(struct project *p);
/* The value of variable key as the loader would see it without a compose
 * file: the environment, then the .env (or --env-file) files of
 * o->project_dir or the working directory.  NULL when unset; caller
 * frees. */
char *compose_env_lookup(const struct compose_opts *o, const char *key);
static inline void project_freep(struct project **p)
{
	if (*p)
		project_free(*p);
}
#define _cleanup_project_ __attribute__((cleanup(project_freep)))

/* ---- queries --------------------------------------------------------- */

/* With defer_env_files: reports the env_file errors of the services
 * named (NULL = every one) and, with_deps, of those they depend on;
 * -EINVAL when there was one. */
int project_env_check(const struct project *p, char *const *services,
		      bool with_deps, struct orch_diag *d);

struct service *project_service(const struct project *p, const char *name);
/* "KEY=VALUE" for each entry of l that has a value (an environment, build
 * args), in order; malloc'd. */
char **kvlist_assignments(const struct m_kvlist *l);
struct network *project_network(const struct project *p, const char *key);
struct volume *project_volume(const struct project *p, const char *key);

/* Where key (e.g. "image", "ports") was written in the service, or the
 * service's own position when the key is absent. */
const struct m_pos *service_key_pos(const struct service *s, const char *key);

/* Bounds on what a compose file may ask for, so that a hostile file is
 * refused before it costs memory or kernel objects (README, "Limits"). */
#define ORCH_MAX_SERVICES 1000	 /* services in a project */
#define ORCH_MAX_NETWORKS 1000	 /* networks in a project */
#define ORCH_MAX_VOLUMES 1000	 /* volumes in a project */
#define ORCH_MAX_REPLICAS 1000	 /* deploy.replicas, scale, --scale */
#define ORCH_MAX_CONTAINERS 2000 /* replicas of all services together */
#define ORCH_MAX_PORTS 65536	 /* port entries (ranges expanded) */
#define ORCH_MIN_MEMORY (6 << 20) /* docker's smallest memory limit */

/* Containers to run: deploy.replicas, else scale, else 1. */
int64_t service_replicas(const struct service *s);

/* Effective limits: mem_limit/cpus/pids_limit, else deploy.resources
 * limits; M_UNSET (cpus < 0) when neither. */
struct m_resources service_limits(const struct service *s);

/* The project name as compose normalizes it (lowercase, only
 * [a-z0-9_-], leading non-alphanumerics dropped); NULL if nothing is
 * left.  Caller frees. */
char *project_name_normalize(const char *raw);

/* Durations as compose prints them: "1m30s", "500ms", "0s". */
char *duration_format(int64_t ns);
/* Go duration syntax as compose takes it: "1m30s", "1.5h", "500ms",
 * "0" -> ns; -EINVAL when malformed, -ERANGE when too long. */
int duration_parse(const char *s, int64_t *ns);

/* ---- the link-only policy ------------------------------------------- */

/* The link-only policy (links.c): whether network n lets every pair
 * talk (enable_icc), whether s is on network net_key, whether a may open
 * connections to b (links or depends_on), and the warnings of up for
 * services that name one they are not linked to. */
bool network_icc(const struct network *n);
bool service_on(const struct service *s, const char *net_key);
bool link_allowed(const struct service *a, const char *b);
void links_warn(const struct project *m);
/* Whether the file asks for compose's open networks (x-orch:
 * {open_networks: true}). */
bool project_open_networks(const struct project *m);
/* Every (from, to, network) where from may open connections to to, by
 * network then service order; icc when the network lets every pair talk
 * (enable_icc, or open networks).  Strings are m's; free the array. */
struct link_edge {
	const char *from, *to, *net;
	bool icc;
};
struct link_edge *link_edges(const struct project *m, size_t *count);

/* ---- output (orch config) --------------------------------------------- */

enum compose_format { COMPOSE_YAML, COMPOSE_JSON };
/* The normalized project as `docker compose config` prints it. */
char *project_render(const struct project *p, enum compose_format fmt);
/* A JSON tree (jansson's json_t) as block YAML, keys in their order,
 * strings quoted wherever they would read back as something else. */
struct json_t;
char *yaml_render(struct json_t *v);
/* The strings of v (a JSON tree) with their literal dollars doubled, as
 * compose prints them, so that the text loads again to the same values
 * (never interpolated). */
void compose_escape_dollars(struct json_t *v);
/* s with its dollars doubled (to free). */
char *compose_dollars_doubled(const char *s);

#endif
