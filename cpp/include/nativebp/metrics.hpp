// Running totals of the loss and metrics over the batches of an epoch.
#pragma once
#include "losses.hpp"

namespace nativebp {

struct Totals {
  double loss = 0, samples = 0;           // loss summed as batch-mean x batch-size
  double correct = 0, judged = 0;         // accuracy
  double sq_err = 0, abs_err = 0, n_err = 0;  // mse / mae metrics over elements
  Index batches = 0;
  bool diverged = false;
};

struct MetricFlags {
  bool accuracy = false, errors = false;
};

// Adds one batch's outputs Z (n rows) against targets y.
template <typename T>
void accumulate(const Loss& loss, ConstMatMap<T> Z, const Target<T>& y, double batch_loss, const MetricFlags& f,
                Totals& t) {
  const Index n = Z.rows();
  t.loss += batch_loss * double(n);
  t.samples += double(n);
  t.batches += 1;
  if (f.accuracy) {
    double judged = 0;
    t.correct += count_correct<T>(loss, Z, y, &judged);
    t.judged += judged;
  }
  if (f.errors && y.dense) {
    for (Index i = 0; i < Z.size(); ++i) {
      const double d = double(Z.data()[i]) - double(y.dense[i]);
      t.sq_err += d * d;
      t.abs_err += std::abs(d);
    }
    t.n_err += double(Z.size());
  }
}

}  // namespace nativebp
