// Shared binding glue: numpy <-> Eigen views, argument checks that name what was expected.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cstdio>

#include <nativebp/losses.hpp>
#include <nativebp/finite.hpp>
#include <nativebp/simd.hpp>
#include <nativebp/metrics.hpp>

namespace py = pybind11;

namespace nativebp::bindings {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;
using LabelArray = py::array_t<std::int64_t, py::array::c_style>;

template <typename T>
constexpr const char* dtype_name() { return sizeof(T) == 4 ? "float32" : "float64"; }

inline std::string type_name(py::handle h) { return py::cast<std::string>(py::type::of(h).attr("__name__")); }

// Raises Python's MemoryError with a message (std::bad_alloc would arrive without one).
[[noreturn]] inline void throw_memory_error(const std::string& msg) {
  PyErr_SetString(PyExc_MemoryError, msg.c_str());
  throw py::error_already_set();
}

// Bytes of physical memory, or 0 where the system does not say.
inline double physical_memory() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? double(pages) * double(size) : 0.0;
#else
  return 0.0;
#endif
}

// Runs f with the GIL released; buffers for a batch too large to fit become a MemoryError naming X
// (the release ends before the handler runs, so the GIL is held again there).
template <typename F>
auto release_gil_for_batch(Index rows, F&& f) {
  try {
    py::gil_scoped_release release;
    return f();
  } catch (const std::bad_alloc&) {
    throw_memory_error("X: the buffers for a batch of " + std::to_string(rows) +
                       " rows do not fit in memory; pass fewer rows at a time (e.g. predict(X, batch_size=...))");
  }
}

inline std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", bytes / double(1 << 30));
  return buf;
}

// An exact numpy array of T: 2-D, `cols` columns, >= 1 row, C-contiguous, aligned, native order.
template <typename T>
bool ready_matrix(py::handle h, Index cols) {
  if (!py::isinstance<Array<T>>(h)) return false;  // dtype (native T) and C order
  const auto a = py::reinterpret_borrow<py::array>(h);
  constexpr int kAligned = 0x0100;  // NPY_ARRAY_ALIGNED
  return a.ndim() == 2 && a.shape(0) >= 1 && a.shape(1) == cols && (a.flags() & kAligned);
}

// A 2-D C-contiguous array of T with `cols` columns (cols < 0: any) and at least one row.
template <typename T>
void check_matrix(const py::array& a, const char* what, Index cols, bool allow_empty = false) {
  if (a.ndim() != 2)
    throw ValueError(std::string(what) + ": expected a 2-D array, got " + std::to_string(a.ndim()) + " dimensions");
  if (a.shape(0) < 1 && !allow_empty) throw ValueError(std::string(what) + ": expected at least one row, got 0");
  if (cols >= 0 && a.shape(1) != cols)
    throw ValueError(std::string(what) + ": expected " + std::to_string(cols) + " columns, got " +
                     std::to_string(a.shape(1)));
}

// A view of one flat buffer, owned by `owner` (the network or optimizer), as a numpy array.
template <typename T>
py::array_t<T> view(T* data, std::vector<py::ssize_t> shape, py::handle owner) {
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t s = sizeof(T);
  for (std::size_t i = shape.size(); i-- > 0;) { strides[i] = s; s *= shape[i]; }
  return py::array_t<T>(shape, strides, data, owner);
}

// Targets from Python: int64 labels (n,) for cross_entropy, else an (n, out) array of T.
// Labels are range-checked here: an out-of-range label would index past the logits.
template <typename T>
struct TargetHolder {
  Target<T> target;
  Index cols = 0;
  py::object keep;  // the array the target points into
};

template <typename T>
TargetHolder<T> make_target(const py::object& y, Index n, Index out, const Loss& loss) {
  TargetHolder<T> h;
  if (py::isinstance<LabelArray>(y) && py::cast<py::array>(y).ndim() == 1) {
    auto labels = py::cast<LabelArray>(y);
    if (loss.kind != LossKind::CrossEntropy)
      throw ValueError("y: integer class labels are only accepted by loss='cross_entropy'");
    if (labels.shape(0) != n)
      throw ValueError("y: expected " + std::to_string(n) + " labels (one per row of X), got " +
                       std::to_string(labels.shape(0)));
    const std::int64_t* p = labels.data();
    for (Index i = 0; i < n; ++i)
      if (p[i] < 0 || p[i] >= out)
        throw ValueError("y: class labels must be in [0, " + std::to_string(out) + "), got " + std::to_string(p[i]) +
                         " at index " + std::to_string(i));
    h.target.labels = p;
    h.cols = 1;
    h.keep = labels;
    return h;
  }
  if (!py::isinstance<Array<T>>(y))
    throw ValueError(std::string("y: expected a C-contiguous ") + dtype_name<T>() + " array of shape (" +
                     std::to_string(n) + ", " + std::to_string(out) + ")");
  auto dense = py::cast<Array<T>>(y);
  if (dense.ndim() != 2 || dense.shape(0) != n || dense.shape(1) != out)
    throw ValueError("y: expected shape (" + std::to_string(n) + ", " + std::to_string(out) + ")");
  h.target.dense = dense.data();
  h.target.stride = out;
  h.cols = out;
  h.keep = dense;
  return h;
}

inline py::dict totals_dict(const Totals& t) {
  py::dict d;
  d["loss"] = t.samples > 0 ? t.loss / t.samples : 0.0;
  d["samples"] = t.samples;
  d["batches"] = t.batches;
  d["diverged"] = t.diverged;
  if (t.judged > 0) d["accuracy"] = t.correct / t.judged;
  if (t.n_err > 0) { d["mse"] = t.sq_err / t.n_err; d["mae"] = t.abs_err / t.n_err; }
  return d;
}

void bind_engine(py::module_& m);
void bind_network(py::module_& m);
void bind_optim(py::module_& m);

}  // namespace nativebp::bindings
