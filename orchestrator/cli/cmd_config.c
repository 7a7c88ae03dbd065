/* orch config: load, validate and print the normalized project, as
 * `docker compose config` does.  Nothing is created. */
#include "orchestrator/cli/cli.h"
#include "orchestrator/compose/compose.h"

#include <getopt.h>

static void config_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: orch config [OPTIONS]\n\n"
	    "Parse, resolve and render the compose files in canonical form.\n\n"
	    "Options:\n"
	    "  -f, --file FILE            Compose file (repeatable; - = "
	    "stdin)\n"
	    "  -p, --project-name NAME    Project name\n"
	    "      --project-directory D  Project directory (default: the "
	    "first "
	    "file's)\n"
	    "      --env-file FILE        Environment file (repeatable)\n"
	    "      --profile P            Enable a profile (repeatable)\n"
	    "      --format yaml|json     Output format (default yaml)\n"
	    "  -o, --output FILE          Write to FILE instead of stdout\n"
	    "      --services             Print the service names\n"
	    "      --volumes              Print the volume names\n"
	    "      --networks             Print the network names\n"
	    "      --profiles             Print the profile names\n"
	    "      --images               Print the image names\n"
	    "      --hash SERVICES        Print each service's config hash "
	    "(\"*\" for all,\n"
	    "                             or names separated by commas)\n"
	    "      --variables            Print the variables the files use, "
	    "with their\n"
	    "                             defaults (--format json: as JSON)\n"
	    "      --environment          Print the environment used for "
	    "interpolation\n"
	    "      --no-interpolate       Don't interpolate variables\n"
	    "      --no-consistency       Don't check references and "
	    "conflicts\n"
	    "  -q, --quiet                Only validate\n");
}

enum {
	OPT_PROFILE = 256,
	OPT_FORMAT,
	OPT_SERVICES,
	OPT_VOLUMES,
	OPT_NETWORKS,
	OPT_PROFILES,
	OPT_IMAGES,
	OPT_ENV_FILE,
	OPT_PROJECT_DIR,
	OPT_NO_INTERP,
	OPT_VARIABLES,
	OPT_ENVIRONMENT,
	OPT_NO_CONSIST,
	OPT_HASH,
};

/* "NAME HASH" for each service of list ("*": all), the hash its
 * containers are labelled with (com.docker.compose.config-hash). */
static int print_hashes(const struct project *p, const char *list, FILE *out)
{
	_cleanup_strv_ char **names = NULL;
	if (streq(list, "*")) {
		for (size_t i = 0; i < p->n_services; i++)
			strv_push(&names, p->services[i].name);
	} else {
		_cleanup_free_ char *copy = xstrdup(list);
		char *save = NULL;
		for (char *n = strtok_r(copy, ",", &save); n;
		     n = strtok_r(NULL, ",", &save))
			strv_push(&names, n);
	}
	for (size_t k = 0; names && names[k]; k++) {
		const struct service *s = project_service(p, names[k]);
		if (!s) {
			fprintf(stderr, "orch config: no such service: %s\n",
				names[k]);
			return 1;
		}
		json_t *t = NULL;
		struct orch_err e = {0};
		if (record_template(p, s, &t, &e) < 0) {
			fprintf(stderr, "orch config: %s\n", e.msg);
			return 1;
		}
		fprintf(out, "%s %s\n", s->name, jstr(t, "hash"));
		json_decref(t);
	}
	return 0;
}

static void print_profiles(const struct project *p, FILE *out)
{
	_cleanup_strv_ char **all = NULL;
	for (int pass = 0; pass < 2; pass++) {
		const struct service *v = pass ? p->disabled : p->services;
		size_t n = pass ? p->n_disabled : p->n_services;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; v[i].profiles && v[i].profiles[j];
			     j++)
				if (!strv_contains(all, v[i].profiles[j]))
					strv_push(&all, v[i].profiles[j]);
	}
	strv_sort(all);
	for (size_t i = 0; all && all[i]; i++)
		fprintf(out, "%s\n", all[i]);
}

static int var_cmp(const void *a, const void *b)
{
	return strcmp(((const struct compose_var *)a)->name,
		      ((const struct compose_var *)b)->name);
}

/* --variables (a table, or JSON as compose prints it) or --environment
 * ("K=V" lines, sorted). */
static int print_vars(struct compose_vars *v, bool environment, bool json,
		      const char *output)
{
	FILE *out = output ? fopen(output, "we") : stdout;
	if (!out) {
		fprintf(stderr, "orch config: opening %s: %s\n", output,
			strerror(errno));
		return 1;
	}
	if (environment) {
		strv_sort(v->env);
		for (size_t i = 0; v->env && v->env[i]; i++)
			fprintf(out, "%s\n", v->env[i]);
	} else if (json) {
		json_t *o = json_object();
		for (size_t i = 0; i < v->n; i++)
			json_object_set_new(
			    o, v->v[i].name,
			    json_pack("{s:s, s:s, s:s, s:b}", "Name",
				      v->v[i].name, "DefaultValue",
				      v->v[i].default_value ?: "",
				      "PresenceValue", v->v[i].alternate ?: "",
				      "Required", v->v[i].required));
		_cleanup_free_ char *t = json_dumps(o, JSON_SORT_KEYS);
		fprintf(out, "%s\n", t);
		json_decref(o);
	} else {
		qsort(v->v, v->n, sizeof(*v->v), var_cmp);
		size_t w[3] = {4, 8, 13};
		for (size_t i = 0; i < v->n; i++) {
			size_t a = strlen(v->v[i].name),
			       b = strlen(v->v[i].default_value ?: "");
			w[0] = a > w[0] ? a : w[0];
			w[2] = b > w[2] ? b : w[2];
		}
		fprintf(out, "%-*s   %-*s   %-*s   %s\n", (int)w[0], "NAME",
			(int)w[1], "REQUIRED", (int)w[2], "DEFAULT VALUE",
			"ALTERNATE VALUE");
		for (size_t i = 0; i < v->n; i++)
			fprintf(out, "%-*s   %-*s   %-*s   %s\n", (int)w[0],
				v->v[i].name, (int)w[1],
				v->v[i].required ? "true" : "false", (int)w[2],
				v->v[i].default_value ?: "",
				v->v[i].alternate ?: "");
	}
	if (out != stdout && fclose(out) != 0) {
		fprintf(stderr, "orch config: writing %s: %s\n", output,
			strerror(errno));
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"project-name", required_argument, NULL, 'p'},
	    {"project-directory", required_argument, NULL, OPT_PROJECT_DIR},
	    {"env-file", required_argument, NULL, OPT_ENV_FILE},
	    {"profile", required_argument, NULL, OPT_PROFILE},
	    {"format", required_argument, NULL, OPT_FORMAT},
	    {"output", required_argument, NULL, 'o'},
	    {"services", no_argument, NULL, OPT_SERVICES},
	    {"volumes", no_argument, NULL, OPT_VOLUMES},
	    {"networks", no_argument, NULL, OPT_NETWORKS},
	    {"profiles", no_argument, NULL, OPT_PROFILES},
	    {"images", no_argument, NULL, OPT_IMAGES},
	    {"hash", required_argument, NULL, OPT_HASH},
	    {"no-interpolate", no_argument, NULL, OPT_NO_INTERP},
	    {"variables", no_argument, NULL, OPT_VARIABLES},
	    {"environment", no_argument, NULL, OPT_ENVIRONMENT},
	    {"no-consistency", no_argument, NULL, OPT_NO_CONSIST},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	/* Global options given before the command (orch -f x config) count
	 * as if given after it. */
	_cleanup_strv_ char **files = strv_copy(cli.files),
			    **profiles = strv_copy(cli.profiles),
			    **env_files = strv_copy(cli.env_files);
	struct compose_opts o = {.project_name = cli.project_name,
				 .project_dir = cli.project_dir};
	enum compose_format fmt = COMPOSE_YAML;
	const char *output = NULL, *hash = NULL;
	int list = 0;
	bool quiet = false;
	int c;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "f:p:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			strv_push(&files, optarg);
			break;
		case 'p':
			o.project_name = optarg;
			break;
		case OPT_PROJECT_DIR:
			o.project_dir = optarg;
			break;
		case OPT_ENV_FILE:
			strv_push(&env_files, optarg);
			break;
		case OPT_PROFILE:
			strv_push(&profiles, optarg);
			break;
		case OPT_FORMAT:
			if (streq(optarg, "yaml"))
				fmt = COMPOSE_YAML;
			else if (streq(optarg, "json"))
				fmt = COMPOSE_JSON;
			else {
				fprintf(stderr,
					"orch config: unknown format \"%s\" "
					"(want yaml or json)\n",
					optarg);
				return 2;
			}
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_SERVICES:
		case OPT_VOLUMES:
		case OPT_NETWORKS:
		case OPT_PROFILES:
		case OPT_IMAGES:
			list = c;
			break;
		case OPT_HASH:
			list = c;
			hash = optarg;
			break;
		case OPT_VARIABLES:
		case OPT_ENVIRONMENT:
			list = c;
			break;
		case OPT_NO_INTERP:
			o.no_interpolate = true;
			break;
		case OPT_NO_CONSIST:
			o.no_consistency = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			config_usage(stdout);
			return 0;
		default:
			config_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "orch config: unexpected argument \"%s\"\n",
			argv[optind]);
		config_usage(stderr);
		return 2;
	}
	/* Empty lists mean "not given": the defaults apply. */
	o.files = strv_len(files) ? files : NULL;
	o.profiles = strv_len(profiles) ? profiles : NULL;
	o.env_files = strv_len(env_files) ? env_files : NULL;
	if (list == OPT_PROFILES)
		o.all_profiles = true;

	struct orch_diag d = {0};
	struct project *p = NULL;
	struct compose_vars vars = {0};
	if (list == OPT_VARIABLES || list == OPT_ENVIRONMENT) {
		/* As written: the files' own expressions. */
		o.vars = &vars;
		o.no_interpolate = true;
	}
	int r = compose_load(&o, &p, &d);
	diag_print(&d, stderr);
	diag_free(&d);
	if (r < 0) {
		compose_vars_clear(&vars);
		return 1;
	}
	if (o.vars) {
		r = print_vars(&vars, list == OPT_ENVIRONMENT,
			       fmt == COMPOSE_JSON, output);
		compose_vars_clear(&vars);
		return r;
	}
	if (quiet) {
		project_free(p);
		return 0;
	}
	FILE *out = stdout;
	if (output && !(out = fopen(output, "we"))) {
		fprintf(stderr, "orch config: opening %s: %s\n", output,
			strerror(errno));
		project_free(p);
		return 1;
	}
	switch (list) {
	case OPT_SERVICES:
		for (size_t i = 0; i < p->n_services; i++)
			fprintf(out, "%s\n", p->services[i].name);
		break;
	case OPT_VOLUMES:
		for (size_t i = 0; i < p->n_volumes; i++)
			fprintf(out, "%s\n", p->volumes[i].key);
		break;
	case OPT_NETWORKS:
		for (size_t i = 0; i < p->n_networks; i++)
			fprintf(out, "%s\n", p->networks[i].key);
		break;
	case OPT_PROFILES:
		print_profiles(p, out);
		break;
	case OPT_HASH:
		if (print_hashes(p, hash, out) != 0) {
			project_free(p);
			if (out != stdout)
				fclose(out);
			return 1;
		}
		break;
	case OPT_IMAGES:
		for (size_t i = 0; i < p->n_services; i++) {
			const struct service *s = &p->services[i];
			if (s->image)
				fprintf(out, "%s\n", s->image);
			else
				fprintf(out, "%s-%s\n", p->name, s->name);
		}
		break;
	default: {
		_cleanup_free_ char *text = project_render(p, fmt);
		fputs(text, out);
	}
	}
	project_free(p);
	if (out != stdout && fclose(out) != 0) {
		fprintf(stderr, "orch config: writing %s: %s\n", output,
			strerror(errno));
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
