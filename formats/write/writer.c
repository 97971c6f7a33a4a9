/*
 * writer.c - a zarr v3 (and v2) store writer: groups, arrays appended row by
 * row (chunks.c), metadata and consolidated metadata the way zarr-python
 * writes them (meta_json.c), and an all-or-nothing commit: everything is
 * written into a temporary directory that one rename puts in place
 * (transaction.c).
 */
#include "writer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "last_error.h"

void ab_writer_config_init(ab_writer_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->zarr_format = 3;
}

const char *ab_writer_tmp_path(const ab_writer *w)
{
	return w ? w->tmp_path : NULL;
}

int ab_writer_create(const char *path, const ab_writer_config *cfg, ab_writer **out)
{
	if (!path || !*path || !out)
		return ab_error_set(AB_EINVAL, "ab_writer_create: null argument");
	*out = NULL;
	ab_writer_config def;
	if (!cfg) {
		ab_writer_config_init(&def);
		cfg = &def;
	}
	if (cfg->zarr_format != 2 && cfg->zarr_format != 3)
		return ab_error_set(AB_EINVAL, "zarr_format %d: must be 2 or 3", cfg->zarr_format);
	char *final_path, *tmp_path;
	int rc = wr_tmp_dir_create(path, cfg->overwrite, &final_path, &tmp_path);
	if (rc)
		return rc;
	ab_writer *w = calloc(1, sizeof *w);
	json_t *nodes = json_object();
	if (!w || !nodes) {
		ab_remove_tree(tmp_path);
		free(tmp_path);
		free(final_path);
		json_decref(nodes);
		free(w);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	w->final_path = final_path;
	w->tmp_path = tmp_path;
	w->nodes = nodes;
	w->zarr_format = cfg->zarr_format;
	w->overwrite = cfg->overwrite;
	*out = w;
	return ab_writer_group(w, "", NULL);
}

int wr_ensure_parents(ab_writer *w, const char *node)
{
	char *p = strdup(node);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = 0;
	for (char *s = p; (s = strchr(s, '/')); s++) {
		*s = '\0';
		json_t *m = json_object_get(w->nodes, p);
		if (!m) {
			rc = ab_writer_group(w, p, NULL);
		} else if (w->zarr_format == 3 ? strcmp(json_string_value(json_object_get(m, "node_type")), "group")
					       : !json_object_get(m, ".zgroup")) {
			rc = ab_error_set(AB_EINVAL, "'%s' is an array, it cannot hold children", p);
		}
		*s = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

int ab_writer_group(ab_writer *w, const char *node, const char *attributes_json)
{
	if (!w)
		return ab_error_set(AB_EINVAL, "ab_writer_group: null writer");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	json_t *old = json_object_get(w->nodes, n);
	if (old && (w->zarr_format == 3 ? strcmp(json_string_value(json_object_get(old, "node_type")), "group")
					: !json_object_get(old, ".zgroup"))) {
		rc = ab_error_set(AB_EINVAL, "'%s' is already an array", n);
		free(n);
		return rc;
	}
	json_t *attrs = wr_parse_attrs(attributes_json, &rc);
	if (!attrs || (rc = wr_ensure_parents(w, n))) {
		json_decref(attrs);
		free(n);
		return rc;
	}
	char *dir = ab_path_join(w->tmp_path, n);
	json_t *meta = wr_group_meta(w->zarr_format, attrs);
	if (!dir || !meta) {
		free(dir);
		json_decref(meta);
		free(n);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	rc = wr_make_dirs(dir);
	if (!rc)
		rc = wr_write_node_meta(dir, w->zarr_format, meta);
	free(dir);
	if (!rc)
		json_object_set(w->nodes, n, meta);
	json_decref(meta);
	free(n);
	return rc;
}

static void writer_free(ab_writer *w)
{
	while (w->open) {
		ab_writer_array *a = w->open;
		w->open = a->next;
		wr_array_free(a);
	}
	json_decref(w->nodes);
	free(w->final_path);
	free(w->tmp_path);
	free(w);
}

void ab_writer_abort(ab_writer *w)
{
	if (!w)
		return;
	ab_remove_tree(w->tmp_path);
	writer_free(w);
}

int ab_writer_commit(ab_writer *w)
{
	if (!w)
		return ab_error_set(AB_EINVAL, "ab_writer_commit: null writer");
	int rc = 0;
	if (w->open)
		rc = ab_error_set(AB_EINVAL, "commit: array '%s' is still open", w->open->node);
	if (!rc)
		rc = wr_write_consolidated(w->tmp_path, w->zarr_format, w->nodes);
	if (!rc)
		rc = wr_publish(w->tmp_path, w->final_path, w->overwrite);
	if (rc)
		ab_remove_tree(w->tmp_path);
	writer_free(w);
	return rc;
}
