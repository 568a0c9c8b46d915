/* kinds.h - the activations, losses and optimizers a model can name, as the
 * network code and the config share them. */
#ifndef DPTRAIN_KINDS_H
#define DPTRAIN_KINDS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dp_act {
    DP_ACT_LINEAR = 0,
    DP_ACT_RELU,
    DP_ACT_SIGMOID,
    DP_ACT_TANH,
    DP_ACT_SOFTMAX,
    DP_ACT_GELU, /* the tanh approximation, as Keras's gelu(approximate=True) and GPT-2 */
} dp_act;

typedef enum dp_loss_kind {
    DP_LOSS_MSE = 0,
    DP_LOSS_BCE,       /* binary_crossentropy */
    DP_LOSS_CE,        /* categorical_crossentropy (one-hot or class-id targets) */
    DP_LOSS_SPARSE_CE, /* sparse_categorical_crossentropy (class-id targets) */
} dp_loss_kind;

typedef enum dp_optim_kind {
    DP_OPTIM_SGD = 0,
    DP_OPTIM_ADAM,
    DP_OPTIM_RMSPROP,
    DP_OPTIM_ADAMW, /* adam with decoupled weight decay */
} dp_optim_kind;

#ifdef __cplusplus
}
#endif

#endif
