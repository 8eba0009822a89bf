/* pending_types.c - item types not implemented yet: loading one is an error. */
#include "internal.h"

static const char *const NO_KEYS[] = {NULL};

static void not_yet(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    ld_error(L, ld_path_key(L, path, "type"), "item type \"%s\" is not supported by %s",
             item_type_name(it->type), GRADING_ENGINE);
}

static grading_err_t no_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                              const char *path, item_result_t *out, grading_error_t *err)
{
    err_set(err, GRADING_ERR_INVALID_RUBRIC, path, "unsupported item type");
    return GRADING_ERR_INVALID_RUBRIC;
}

const item_ops_t date_ops = {"date", NO_KEYS, not_yet, no_grade};
const item_ops_t entity_ops = {"entity", NO_KEYS, not_yet, no_grade};
const item_ops_t pick_ops = {"pick", NO_KEYS, not_yet, no_grade};
const item_ops_t rating_ops = {"rating", NO_KEYS, not_yet, no_grade};
