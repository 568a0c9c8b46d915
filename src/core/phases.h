/* phases.h - (private) the phases a rank's time is split into for the
 * end-of-run breakdown; the step, the gradient sum and the training loop add to them. */
#ifndef DPTRAIN_PHASES_H
#define DPTRAIN_PHASES_H

enum {
    DP_TIME_DATA,    /* gathering micro-batch rows */
    DP_TIME_COMPUTE, /* forward, loss, backward */
    DP_TIME_REDUCE,  /* fixed-point conversion and scaling of the gradient */
    DP_TIME_COMM,    /* inside MPI collectives, waiting included */
    DP_TIME_OPTIM,   /* optimizer update */
    DP_TIME_EVAL,    /* validation and test evaluation, shared by the ranks */
    DP_TIME_CKPT,    /* checkpoint writing and its agreement */
    DP_TIME_PHASES
};

#endif
