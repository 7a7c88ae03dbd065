/* The image store ($ORCH_ROOT/images, $ORCH_ROOT/layers: content-addressed
 * layers, shared read-only by every container) and named volumes
 * ($ORCH_ROOT/volumes).  Images come in by import, load, build (commit)
 * and the registry client, which stores what it verified through the
 * second half of this header.  This is the store's one public header. */
#ifndef ORCH_RUNTIME_STORE_H
#define ORCH_RUNTIME_STORE_H

#include "common/common.h"

#include <jansson.h>

/* overlayfs's xattr name: "trusted.overlay.NAME", or "user.overlay.NAME"
 * for a rootless orch (which mounts with userxattr: trusted.* is the host
 * root's).  Static storage. */
const char *store_overlay_xattr(const char *name);

/* ======================================================================
 * Image store ($ORCH_ROOT/images, $ORCH_ROOT/layers)
 * ====================================================================== */

/* A run of ids: inside.. in a user namespace are outside.. in its parent. */
struct rt_idmap {
	uint32_t inside, outside, count;
};

struct rt_healthcheck {
	char **test; /* ["CMD", ...] / ["CMD-SHELL", "..."] / ["NONE"] */
	int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns;
	int retries;
};

struct rt_image_config {
	char **entrypoint, **cmd, **env;
	char *workdir, *user, *stop_signal;
	char **exposed_ports; /* "80/tcp" */
	char **volumes;	      /* "/data" */
	char **labels;	      /* "k=v" */
	char **shell;	      /* SHELL, default ["/bin/sh","-c"] */
	char **onbuild;	      /* ONBUILD triggers, as written */
	struct rt_healthcheck *healthcheck;
};

struct rt_image {
	char id[65];   /* sha256 of the config JSON */
	char **names;  /* "repo:tag" */
	char **digests; /* "repo@sha256:<hex>" of the manifests pulled */
	char **layers; /* diff_ids "sha256:<hex>", bottom first */
	struct rt_image_config config;
	int64_t created; /* unix seconds */
	int64_t size;	 /* bytes of all layers */
};

/* NAME[:TAG] (tag defaults to latest) or a unique id prefix. */
int rt_image_lookup(const char *ref, struct rt_image **out, struct orch_err *e);
int rt_image_list(struct rt_image ***out, size_t *n, struct orch_err *e);
void rt_image_free(struct rt_image *img); /* NULL is fine */
void rt_image_freep(struct rt_image **img);
#define _cleanup_image_ __attribute__((cleanup(rt_image_freep)))
void rt_image_config_clear(struct rt_image_config *c);
/* Layer directories for rt_spec.lowers, uppermost first. */
char **rt_image_lowers(const struct rt_image *img);

int rt_image_import(const char *tarball, const char *ref, char id[65],
		    struct orch_err *e);
/* docker-archive or OCI layout (directory or tarball); loaded names out. */
int rt_image_load(const char *path, char ***refs, struct orch_err *e);
int rt_image_remove(const char *ref, bool force, struct orch_err *e);
int rt_image_tag(const char *ref, const char *new_ref, struct orch_err *e);

/* The image's config as OCI JSON text. */
int rt_image_inspect_json(const char *ref, char **json, struct orch_err *e);

/* Builds: turns an overlay upper directory into a stored layer (overlay
 * whiteouts become OCI whiteouts); *diff_id = "sha256:<hex>".  A layer
 * with no changes gives *diff_id = NULL and returns 0.  An upper written
 * by a container remapped to the range at id_base (0: none) holds that
 * range's ids: the layer gets the container's own. */
int rt_layer_from_upper(const char *upper, uint32_t id_base, char **diff_id,
			struct orch_err *e);
/* Writes to out a tar of name in the directory dfd (a file, or a
 * directory and what it holds; "." what dfd holds), as `docker cp SRC -`
 * makes it: entries named from name, symbolic links kept as links (none
 * is followed), owners of a range at id_base (0: none) moved back to the
 * container's own ids. */
int rt_tree_tar(int dfd, const char *name, int out, uint32_t id_base,
		struct orch_err *e);
/* Extracts the tar (gzip, ...) read from fd into the directory dfd, as
 * `docker cp - DEST` does: every entry opened beneath dfd (no "..", no
 * absolute path, no link leading out), files, directories, links and
 * fifos with their modes and times (device nodes left out), owners as o
 * says; a directory there is never replaced by what is no directory. */
struct rt_tree_copy;
int rt_tree_untar(int fd, int dfd, const struct rt_tree_copy *o,
		  struct orch_err *e);
/* Records an image from layers + config, tags it with ref (may be NULL);
 * author and comment (each may be NULL) go in the config as docker
 * commit writes them. */
struct rt_image_meta {
	const char *author, *comment;
};
int rt_image_commit(char *const *layers, const struct rt_image_config *cfg,
		    const struct rt_image_meta *meta, const char *ref,
		    char id[65], struct orch_err *e);

/* ======================================================================
 * Named volumes ($ORCH_ROOT/volumes/<name>)
 * ====================================================================== */

struct rt_volume {
	char *name;
	char *mountpoint; /* the data directory containers mount */
	char **labels;	  /* "k=v" */
	int64_t size_limit; /* bytes, 0 = none */
	int64_t created;
};

struct rt_volume_opts {
	char **labels;
	int64_t size_limit; /* driver_opts size */
};

/* Creating an existing volume is success (exists = true). */
int rt_volume_create(const char *name, const struct rt_volume_opts *o,
		     bool *exists, struct orch_err *e);
int rt_volume_get(const char *name, struct rt_volume **out, struct orch_err *e);
int rt_volume_list(struct rt_volume ***out, size_t *n, struct orch_err *e);
int rt_volume_remove(const char *name, struct orch_err *e);
void rt_volume_free(struct rt_volume *v);
/* The ids of a user namespace's range: this many from its base. */
#define RT_IDRANGE_SIZE 65536u
/* How a container's ids are stored on disk: its uid and gid maps (the
 * container's ids to ours).  A range at base is {0, base, RANGE} for both
 * (base 0: the ids as they are); keep-id's has up to three entries. */
struct rt_ids {
	struct rt_idmap uid[3], gid[3];
	size_t n_uid, n_gid;
};
void rt_ids_base(struct rt_ids *ids, uint32_t base);
/* id through n entries of m (inside to outside), or out to back; false
 * when none holds it. */
bool rt_idmap_find(const struct rt_idmap *m, size_t n, uint32_t id, bool back,
		   uint32_t *out);
/* Copies of directory trees: files, links, fifos, owners, modes and
 * times; a link is never followed, and every entry is opened by its name
 * in its directory (no path walks through what the source holds). */
struct rt_tree_copy {
	const struct rt_ids *ids; /* owners through these maps (inside to
				     outside; back: outside to inside), or
				     as they are */
	bool back;
	bool own;	/* owners uid, gid instead */
	uid_t uid;
	gid_t gid;
	bool layer;	/* whiteouts and extended attributes go too */
	bool replace;	/* a file or link already there is replaced */
};
/* The content of directory sfd into directory dfd. */
int rt_tree_copy(int sfd, int dfd, const struct rt_tree_copy *o,
		 struct orch_err *e);
/* sname of sfd (a file, link, fifo or tree) as dname in dfd. */
int rt_tree_copy_entry(int sfd, const char *sname, int dfd, const char *dname,
		       const struct rt_tree_copy *o, struct orch_err *e);

/* Copies of lowers (layer directories, uppermost first) with every
 * owner moved through ids, made once per layer and map, kept with the
 * layer: a rootless orch cannot idmap a mount, so a container of its own
 * user namespace (keep-id) runs on these.  *out is a NULL-ended list. */
int rt_layers_shifted(char *const *lowers, const struct rt_ids *ids,
		      char ***out, struct orch_err *e);

/* Gives the volume's content to ids (a container's, as stored): the
 * owners the volume's last ids held move to the new ones, the others (a
 * host user's files) stay.  Refused while a container uses it. */
int rt_volume_shift(const char *name, const struct rt_ids *ids,
		    struct orch_err *e);
/* For a container mounting volume name at target: creates the volume if
 * needed, fills it once from img's content at target (img may be NULL),
 * gives it to the container's ids, mounts a size-limited one, and returns
 * the directory to mount. */
int rt_volume_prepare(const char *name, const struct rt_image *img,
		      const char *target, const struct rt_ids *ids,
		      char **mountpoint, struct orch_err *e);
/* Whether a mount of the volume exists outside the store (a container's),
 * in any mount namespace; *user (may be NULL) names a process using it. */
int rt_volume_in_use(const char *name, bool *used, char **user,
		     struct orch_err *e);

/* ======================================================================
 * References, blobs and locks: what the registry client and builds use
 * ====================================================================== */

/* An image reference as docker parses it (runtime/refparse.c):
 * "busybox" is domain "docker.io", path "library/busybox", tag "latest". */
struct image_ref {
	char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
	char *path;   /* "library/busybox", "team/app" */
	char *tag;    /* NULL when only a digest was given */
	char *digest; /* "sha256:<hex>" or NULL */
};
int image_ref_parse(const char *ref, struct image_ref *r, struct orch_err *e);
void image_ref_clear(struct image_ref *r);
/* The name as docker shows it: "busybox", "me/app", "localhost:5000/app". */
char *image_ref_familiar(const struct image_ref *r);
/* "domain/path". */
char *image_ref_repo(const struct image_ref *r);
/* familiar[:tag][@digest] */
char *image_ref_string(const struct image_ref *r);
/* The host to connect to: docker.io's registry is registry-1.docker.io. */
const char *image_ref_registry_host(const struct image_ref *r);
/* localhost, 127.0.0.0/8 and [::1] may answer in plain http. */
bool registry_allows_http(const char *domain);
/* "sha256:" + 64 lowercase hex digits (or sha512: + 128). */
bool digest_valid(const char *digest);

/* The store's key for a reference: "name:tag", or "name@sha256:..." when
 * it has a digest, with name in its familiar form.  Refuses malformed
 * references with a message. */
int image_ref_normalize(const char *ref, char **out, struct orch_err *e);

bool layer_exists(const char *diff_id);
struct layer_expect {
	const char *diff_id;	 /* "sha256:<hex>" the tar must hash to */
	const char *blob_digest; /* "sha256:<hex>" the file must hash to */
	/* A foreign (non-distributable) layer's descriptor, as the manifest
	 * gave it: kept, so that a push names it instead of sending it. */
	const char *foreign_type;
	json_t *foreign_urls;
};
/* Extracts a (possibly gzip/zstd compressed) layer tarball into the store
 * once, verifying the digests given while reading; *diff_id_out (may be
 * NULL) receives "sha256:<hex>".  A layer already stored is not
 * extracted again. */
int layer_store(const char *path, const struct layer_expect *want,
		char **diff_id_out, struct orch_err *e);

/* The same, reading the tarball from fd (closed on return, whatever
 * happens); path only names it in messages.  The whole stream is read
 * (and hashed) unless an error stops it early. */
int layer_store_fd(int fd, const char *path, const struct layer_expect *want,
		   char **diff_id_out, struct orch_err *e);

/* The archive a layer was stored from, kept beside it (a pull's blob as
 * the registry sent it, a build's or a load's tarball). */
struct layer_blob {
	char digest[72];     /* "sha256:<hex>" of the file */
	char compression[8]; /* "gzip", "zstd" or "none" */
	int64_t size;
	char *path;
	char *foreign_type; /* a foreign layer's media type, else NULL */
	json_t *foreign_urls;
};
void layer_blob_clear(struct layer_blob *b);
int layer_blob_get(const char *diff_id, struct layer_blob *b,
		   struct orch_err *e);

/* Records an image from its raw OCI config bytes (id = their sha256) and
 * tags it with each of refs. */
int image_store_config(const char *config, size_t len, char *const *refs,
		       char id[65], struct orch_err *e);

/* The raw bytes of image id's config (their sha256 is id). */
int image_config_read(const char *id, char **data, size_t *len,
		      struct orch_err *e);

/* A private scratch directory under $ORCH_ROOT/tmp, locked (*lock) for
 * as long as the caller keeps *lock open; those of dead owners are
 * removed on the way. */
int store_tmpdir(const char *what, char **out, int *lock, struct orch_err *e);
/* Locks of the store ($ORCH_ROOT/images/<name>), flock op LOCK_SH or
 * LOCK_EX; returns the fd to close.  The index lock guards
 * repositories.json; the layers lock keeps image removal from deleting a
 * layer that a load or commit in progress has found stored.  Never take
 * the layers lock while holding the index lock. */
#define STORE_INDEX_LOCK  "lock"
#define STORE_LAYERS_LOCK "layers.lock"
int store_lock(const char *name, int op, struct orch_err *e);

#endif
