/* dptrain.h - the public C API of libdptrain, in one include.
 *
 *   dptrain/error.h       dp_error: the one failure a call reports
 *   dptrain/shape.h       dp_shape: the shape of one sample
 *   dptrain/kinds.h       activations, losses and optimizers by kind
 *   dptrain/config.h      load and validate a YAML run configuration
 *   dptrain/model.h       build a model, initialize it, predict
 *   dptrain/checkpoint.h  list and read checkpoints into a model
 *   dptrain/train.h       open the MPI ranks and train a configuration
 *
 * Link with `pkg-config --cflags --libs dptrain` or CMake's
 * find_package(dptrain) and target dptrain::dptrain. Every symbol the
 * library exports starts with dp_. */
#ifndef DPTRAIN_H
#define DPTRAIN_H

#include "dptrain/checkpoint.h"
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/kinds.h"
#include "dptrain/model.h"
#include "dptrain/shape.h"
#include "dptrain/train.h"

#endif
