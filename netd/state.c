/* netd's configuration file and its persisted state (networks with their
 * endpoints, ports and pairs; the host settings it changed).  The state
 * file is replaced atomically after every change. */
#include "netd/netd-int.h"

#include <jansson.h>

#define STATE_VERSION 1

int config_load(const char *path, struct netd_config *cfg, struct orch_err *e)
{
	*cfg = (struct netd_config){
	    .pool = {0x0ad20000u, 16}, /* 10.210.0.0/16 */
	    .subnet_prefix = 24,
	    .quota_networks = 64,
	    .quota_endpoints = 1024,
	    .quota_ports = 1024,
	};
	if (!path || access(path, F_OK) < 0)
		return 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(e, EINVAL, "reading config %s: line %d: %s",
			       path, jerr.line, jerr.text);
	int r = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (streq(key, "pool") && json_is_string(v)) {
			r = ipam_parse_cidr(json_string_value(v), &cfg->pool,
					    e);
		} else if (streq(key, "subnet_prefix") && json_is_integer(v) &&
			   json_integer_value(v) >= 8 &&
			   json_integer_value(v) <= 30) {
			cfg->subnet_prefix = (int)json_integer_value(v);
		} else if (streq(key, "quota_networks") && json_is_integer(v) &&
			   json_integer_value(v) >= 0) {
			cfg->quota_networks = (unsigned)json_integer_value(v);
		} else if (streq(key, "quota_endpoints") &&
			   json_is_integer(v) && json_integer_value(v) >= 0) {
			cfg->quota_endpoints = (unsigned)json_integer_value(v);
		} else if (streq(key, "quota_ports") && json_is_integer(v) &&
			   json_integer_value(v) >= 0) {
			cfg->quota_ports = (unsigned)json_integer_value(v);
		} else {
			r = err_set(e, EINVAL,
				    "unknown or invalid setting \"%s\"", key);
		}
		if (r < 0)
			break;
	}
	json_decref(root);
	if (r == 0 && cfg->subnet_prefix < cfg->pool.prefix)
		r = err_set(e, EINVAL,
			    "subnet_prefix /%d is larger than the pool",
			    cfg->subnet_prefix);
	return r < 0 ? err_wrap(e, "reading config %s", path) : 0;
}

int state_load(const char *path, struct netd_state *st, struct orch_err *e)
{
	memset(st, 0, sizeof(*st));
	st->saved_ip_forward = st->saved_bridge_nf = -1;
	if (access(path, F_OK) < 0)
		return 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		return err_set(e, EINVAL, "reading state %s: %s", path,
			       jerr.text);
	int r = 0;
	json_t *nets = json_object_get(root, "networks");
	if (json_integer_value(json_object_get(root, "version")) !=
		STATE_VERSION ||
	    !json_is_array(nets)) {
		r = err_set(e, EINVAL, "reading state %s: unknown format",
			    path);
		goto out;
	}
	st->saved_ip_forward =
	    (int)json_integer_value(json_object_get(root, "saved_ip_forward"));
	st->saved_bridge_nf =
	    (int)json_integer_value(json_object_get(root, "saved_bridge_nf"));
	st->nets = xcalloc(json_array_size(nets) + 1, sizeof(*st->nets));
	size_t i;
	json_t *item;
	json_array_foreach(nets, i, item)
	{
		r = netd_network_from_json(item, &st->nets[st->n_nets], e);
		if (r < 0) {
			r = err_wrap(e, "reading state %s", path);
			goto out;
		}
		st->n_nets++;
	}
out:
	json_decref(root);
	return r;
}

int state_save(const char *path, const struct netd_state *st,
	       struct orch_err *e)
{
	json_t *nets = json_array();
	for (size_t i = 0; i < st->n_nets; i++)
		json_array_append_new(nets, netd_network_to_json(&st->nets[i]));
	json_t *root =
	    json_pack("{s:i, s:i, s:i, s:o}", "version", STATE_VERSION,
		      "saved_ip_forward", st->saved_ip_forward,
		      "saved_bridge_nf", st->saved_bridge_nf, "networks", nets);
	_cleanup_free_ char *text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	if (!text)
		abort();
	return write_file_atomic(path, text, strlen(text), 0600, e);
}

void state_clear(struct netd_state *st)
{
	netd_networks_free(st->nets, st->n_nets);
	st->nets = NULL;
	st->n_nets = 0;
}

struct netd_network *state_find(struct netd_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_nets; i++)
		if (streq(st->nets[i].name, name) ||
		    streq(st->nets[i].id, name))
			return &st->nets[i];
	return NULL;
}

ssize_t state_endpoint_find(const struct netd_network *n, const char *cid)
{
	for (size_t i = 0; i < n->n_endpoints; i++)
		if (streq(n->endpoints[i].container_id, cid))
			return (ssize_t)i;
	return -1;
}
