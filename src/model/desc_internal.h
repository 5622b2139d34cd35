/* What a family gives the description machinery (src/model/desc.c): its kind list and a table
 * builder. Adding a family = a config mapping + one of these + its block forward(s). */
#ifndef NMF_MODEL_DESC_INTERNAL_H
#define NMF_MODEL_DESC_INTERNAL_H

#include "nmformer/desc.h"

typedef struct {
    const char *title;           /* for messages: "ViT" */
    const nmf_param_kind *kinds; /* buffer order */
    int kind_count;
    size_t (*count)(const nmf_model_config *c);               /* rows of the table */
    void (*build)(const nmf_model_config *c, nmf_param *rows); /* name, kind, block, ndim, shape */
} nmf_model_family;

/* The family of a validated config (by arch); NULL if none. */
const nmf_model_family *nmf_model_family_of(const nmf_model_config *c);
/* Each family's entry (vit_desc.c, hf_desc.c). */
const nmf_model_family *nmf_vit_family(void);
const nmf_model_family *nmf_bert_family(void);
const nmf_model_family *nmf_gpt2_family(void);
const nmf_model_family *nmf_llama_family(void);
/* A token family's block prefix as a printf format of the block index ("h.%d."). */
const char *nmf_hf_block_format(nmf_hf_model_type t);

/* One row of nmf_model_load_dense: t's values (t is p's tensor, its shape checked by the caller)
 * into buf at p's offset in layout l, checked finite; nothing when p has no offset there. */
nmf_status nmf_model_load_param(const nmf_model_desc *d, nmf_layout l, const nmf_param *p,
                                const nmf_tensor *t, float *buf);

#endif
