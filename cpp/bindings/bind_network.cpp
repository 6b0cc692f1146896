// Bindings for Network<T> and Trainer<T>: layer specs (dicts) to layers, numpy views of the
// flat buffers, GIL released and the network's lock held around all compute.
#include <nativebp/gradcheck.hpp>
#include <nativebp/layers/activations.hpp>
#include <nativebp/layers/batchnorm.hpp>
#include <nativebp/layers/dense.hpp>
#include <nativebp/layers/dropout.hpp>
#include <nativebp/layers/layernorm.hpp>
#include <nativebp/layers/residual.hpp>
#include <nativebp/trainer.hpp>

#include "common.hpp"

namespace nativebp::bindings {

template <typename T>
std::vector<LayerPtr<T>> make_layers(py::handle specs);

// One field of a layer spec; a missing key or a value of the wrong type names the key.
template <typename V>
V field(const py::dict& s, const char* key, const char* expected) {
  if (!s.contains(key)) throw ValueError(std::string("missing key '") + key + "'");
  py::object v = s[key];
  try {
    return py::cast<V>(v);
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("'") + key + "': expected " + expected + ", got " + type_name(v) + " " +
                         py::cast<std::string>(py::repr(v)));
  }
}

template <typename T>
LayerPtr<T> make_layer(const py::dict& s) {
  const auto type = field<std::string>(s, "type", "a layer type name");
  auto num = [&](const char* k) { return field<double>(s, k, "a number"); };
  auto idx = [&](const char* k) { return field<Index>(s, k, "a 64-bit integer"); };
  auto flag = [&](const char* k) { return field<bool>(s, k, "True or False"); };
  auto str = [&](const char* k) { return field<std::string>(s, k, "a string"); };
  if (type == "dense") {
    for (const char* k : {"init", "bias_init"})
      if (!is_known_init(str(k))) throw ValueError(std::string("'") + k + "': unknown initializer '" + str(k) + "'");
    return std::make_unique<Dense<T>>(idx("in_features"), idx("out_features"), flag("bias"),
                                      Init{str("init"), num("init_arg")}, Init{str("bias_init"), num("init_arg")});
  }
  if (type == "identity") return std::make_unique<Activation<T, IdentityFn>>();
  if (type == "relu") return std::make_unique<Activation<T, ReLUFn>>();
  if (type == "leaky_relu") return std::make_unique<Activation<T, LeakyReLUFn>>(LeakyReLUFn{num("alpha")});
  if (type == "elu") return std::make_unique<Activation<T, ELUFn>>(ELUFn{num("alpha")});
  if (type == "selu") return std::make_unique<Activation<T, SELUFn>>();
  if (type == "gelu") return std::make_unique<Activation<T, GELUFn>>();
  if (type == "sigmoid") return std::make_unique<Activation<T, SigmoidFn>>();
  if (type == "tanh") return std::make_unique<Activation<T, TanhFn>>();
  if (type == "softplus") return std::make_unique<Activation<T, SoftplusFn>>(SoftplusFn{num("beta"), num("threshold")});
  if (type == "silu") return std::make_unique<Activation<T, SiLUFn>>();
  if (type == "softmax") return std::make_unique<Activation<T, SoftmaxFn>>();
  if (type == "dropout") return std::make_unique<Dropout<T>>(num("p"));
  if (type == "batchnorm1d")
    return std::make_unique<BatchNorm1d<T>>(idx("num_features"), num("eps"), num("momentum"), flag("affine"));
  if (type == "layernorm")
    return std::make_unique<LayerNorm<T>>(idx("num_features"), num("eps"), flag("affine"));
  if (type == "residual") return std::make_unique<Residual<T>>(make_layers<T>(field<py::object>(s, "layers", "a list")));
  throw ValueError("unknown layer type '" + type + "'");
}

// Errors from a spec are prefixed with its position, so a nested one reads "layers[2]: layers[0]: ...".
template <typename T>
std::vector<LayerPtr<T>> make_layers(py::handle specs) {
  if (!py::isinstance<py::list>(specs))
    throw py::type_error("layers: expected a list of layer specs (dicts), got " + type_name(specs));
  std::vector<LayerPtr<T>> out;
  std::size_t i = 0;
  for (auto s : specs) {
    const std::string where = "layers[" + std::to_string(i++) + "]: ";
    try {
      if (!py::isinstance<py::dict>(s)) throw py::type_error("expected a layer spec (dict), got " + type_name(s));
      out.push_back(make_layer<T>(py::reinterpret_borrow<py::dict>(s)));
    } catch (const ValueError& e) {
      throw ValueError(where + e.what());
    } catch (const py::type_error& e) {
      throw py::type_error(where + e.what());
    }
  }
  return out;
}

// Refuses, before allocating, a network over the engine's parameter limit or one whose
// parameters, gradients and state exceed this machine's memory: filling those buffers would get
// the process killed instead of raising. Counted in double so absurd sizes cannot overflow.
template <typename T>
void check_network_size(const std::vector<LayerPtr<T>>& layers) {
  double params = 0, states = 0;
  for (auto& l : layers) {
    for (auto& p : l->params()) params += double(p.size());
    for (auto& s : l->states()) states += double(s.size());
  }
  if (params > double(kMaxParameters))
    throw ValueError("layers: the network would have " + std::to_string(std::llround(std::min(params, 9e18))) +
                     " parameters, more than the limit of " + std::to_string(kMaxParameters));
  const double bytes = (2 * params + states) * double(sizeof(T)), ram = physical_memory();
  if (ram > 0 && bytes > ram)
    throw_memory_error("layers: the network's parameters, gradients and state need " + gib(bytes) +
                       " GiB, more than this machine's " + gib(ram) + " GiB of memory");
}

// An optimizer's moment buffers must span this network's flat parameter buffer: one built for
// another network would read and write past their end.
template <typename T>
void check_optimizer(Network<T>& net, Optimizer<T>& opt) {
  if (opt.sized_for(Index(net.param().size()))) return;  // the per-step case: no allocation
  for (auto& kv : opt.state())
    if (kv.second->size() != net.param().size())
      throw ValueError("optimizer: built for a network with " + std::to_string(kv.second->size()) +
                       " parameters, this one has " + std::to_string(net.param().size()));
}

// Holds X and y alive and the C++ trainer that points into them.
template <typename T>
struct PyTrainer {
  py::object net_obj, opt_obj, X_keep;
  TargetHolder<T> y;
  std::unique_ptr<Trainer<T>> trainer;
};

template <typename T>
void bind_network_t(py::module_& m, const char* name) {
  using Net = Network<T>;
  auto owned_mask = [](const Net& net, const std::optional<std::vector<bool>>& owned) {
    std::vector<char> mask;
    if (owned) {
      if (owned->size() != net.param_info().size()) throw ValueError("owned: expected one flag per parameter tensor");
      for (bool b : *owned) mask.push_back(b);
    }
    return mask;
  };
  auto options = [](double l1, double l2, double clip_norm, double clip_value) {
    if (l1 < 0 || l2 < 0) throw ValueError("l1/l2: penalties must be >= 0");
    return StepOptions{l1, l2, clip_norm, clip_value};
  };

  py::class_<Net>(m, name)
      .def(py::init([](const py::list& specs, Index in_features, std::uint64_t seed) {
             auto layers = make_layers<T>(specs);
             check_network_size<T>(layers);
             return std::make_unique<Net>(std::move(layers), in_features, seed);
           }),
           py::arg("layers"), py::arg("in_features"), py::arg("seed"))
      .def_property_readonly("in_features", &Net::in_features)
      .def_property_readonly("out_features", &Net::out_features)
      .def("param_info",
           [](const Net& n) {
             py::list out;
             for (auto& p : n.param_info()) out.append(py::make_tuple(p.name, p.rows, p.cols, p.is_weight));
             return out;
           })
      .def("state_info",
           [](const Net& n) {
             py::list out;
             for (auto& p : n.state_info()) out.append(py::make_tuple(p.name, p.rows, p.cols));
             return out;
           })
      .def("param_array", [](py::object self) { auto& n = self.template cast<Net&>(); return view(n.param().data(), {py::ssize_t(n.param().size())}, self); })
      .def("grad_array", [](py::object self) { auto& n = self.template cast<Net&>(); return view(n.grad().data(), {py::ssize_t(n.grad().size())}, self); })
      .def("state_array", [](py::object self) { auto& n = self.template cast<Net&>(); return view(n.state().data(), {py::ssize_t(n.state().size())}, self); })
      .def("set_trainable",
           [](Net& n, std::size_t i, bool on) {
             if (i >= n.trainable().size()) throw ValueError("set_trainable: no parameter tensor " + std::to_string(i));
             n.trainable()[i] = on;
           })
      .def("trainable", [](Net& n) { return std::vector<bool>(n.trainable().begin(), n.trainable().end()); })
      .def("reseed", [](Net& n, std::uint64_t seed) { n.rng().seed(seed); })
      .def("rng_state", [](Net& n) { return n.rng().state(); })
      .def("set_rng_state", [](Net& n, const std::string& s) {
        try { n.rng().set_state(s); } catch (const std::invalid_argument& e) { throw ValueError(e.what()); }
      })
      .def("forward",
           [](Net& n, const Array<T>& X, bool training) {
             check_matrix<T>(X, "X", n.in_features());
             const Index rows = X.shape(0);
             Array<T> out({py::ssize_t(rows), py::ssize_t(n.out_features())});
             T* dst = out.mutable_data();
             release_gil_for_batch(rows, [&] {
               std::lock_guard<std::mutex> lock(n.mutex());
               auto Z = n.forward(X.data(), rows, training);
               std::copy(Z.data(), Z.data() + Z.size(), dst);
             });
             return out;
           },
           py::arg("X"), py::arg("training") = false)
      .def("loss_and_grad",
           [](Net& n, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta,
              bool want_dx, bool training, double grad_scale) -> py::tuple {
             // a data-parallel replica with no rows this step still takes part in the collectives
             const bool idle = n.distributed() && X.ndim() == 2 && X.shape(0) == 0;
             check_matrix<T>(X, "X", n.in_features(), idle);
             if (!std::isfinite(grad_scale) || grad_scale < 0)
               throw ValueError("grad_scale: expected a finite number >= 0, got " + std::to_string(grad_scale));
             const Loss loss = Loss::parse(loss_name, delta);
             const Index rows = X.shape(0);
             auto target = make_target<T>(y, rows, n.out_features(), loss);
             py::object dx = py::none();
             T* dxp = nullptr;
             if (want_dx) {
               Array<T> a({py::ssize_t(rows), py::ssize_t(n.in_features())});
               dxp = a.mutable_data();
               dx = a;
             }
             const double value = release_gil_for_batch(rows, [&] {
               std::lock_guard<std::mutex> lock(n.mutex());
               return n.loss_and_grad(X.data(), rows, target.target, loss, dxp, training, grad_scale);
             });
             return py::make_tuple(value, dx);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta") = 1.0, py::arg("want_dx") = false,
           py::arg("training") = true, py::arg("grad_scale") = 1.0)
      // Data-parallel BatchNorm: `allreduce(buf)` must sum the float64 buffer over all replicas in
      // place (e.g. comm.Allreduce(MPI.IN_PLACE, buf)); None: one process. It runs with the GIL
      // taken, from inside the (GIL-free) compute of training-mode forward and backward.
      .def("set_allreduce",
           [](Net& n, py::object allreduce) {
             Collective::SumFn sum;
             if (!allreduce.is_none()) {
               if (!PyCallable_Check(allreduce.ptr()))
                 throw py::type_error("allreduce: expected a callable taking a float64 buffer, or None, got " +
                                      type_name(allreduce));
               auto fn = std::make_shared<py::object>(std::move(allreduce));
               sum = [fn](double* buf, Index len) {
                 py::gil_scoped_acquire gil;
                 (*fn)(py::memoryview::from_buffer(buf, {py::ssize_t(len)}, {py::ssize_t(sizeof(double))}));
               };
             }
             Collective::SumFn previous;
             {  // a training call may hold the lock and wait for the GIL in the callback: release it
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               previous = n.set_allreduce(std::move(sum));
             }  // `previous` (a Python object) is destroyed here, with the GIL held
           },
           py::arg("allreduce"))
      .def_property_readonly("distributed", &Net::distributed)
      .def("zero_grad", [](Net& n) { py::gil_scoped_release r; std::lock_guard<std::mutex> l(n.mutex()); n.zero_grad(); })
      .def("train_step",
           [=](py::object self, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta,
               Optimizer<T>& opt, std::optional<std::vector<bool>> owned, double l1, double l2, double clip_norm,
               double clip_value) {
             auto& n = self.template cast<Net&>();
             check_matrix<T>(X, "X", n.in_features());
             const Loss loss = Loss::parse(loss_name, delta);
             auto target = make_target<T>(y, X.shape(0), n.out_features(), loss);
             const auto mask = owned_mask(n, owned);
             const StepOptions o = options(l1, l2, clip_norm, clip_value);
             check_optimizer(n, opt);
             return release_gil_for_batch(X.shape(0), [&] {
               std::lock_guard<std::mutex> lock(n.mutex());
               return n.train_step(X.data(), X.shape(0), target.target, loss, opt, mask, o);
             });
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta"), py::arg("optimizer"), py::arg("owned"),
           py::arg("l1") = 0.0, py::arg("l2") = 0.0, py::arg("clip_norm") = 0.0, py::arg("clip_value") = 0.0)
      // `steps` fused train steps in one call, on consecutive batches of `batch_size` rows (cycling
      // in order). Returns each step's loss; stops after the first non-finite one (that step skipped).
      .def("train_steps",
           [=](py::object self, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta,
               Optimizer<T>& opt, std::optional<std::vector<bool>> owned, double l1, double l2, double clip_norm,
               double clip_value, Index steps, Index batch_size) {
             auto& n = self.template cast<Net&>();
             check_matrix<T>(X, "X", n.in_features());
             if (steps < 0) throw ValueError("steps: expected an integer >= 0, got " + std::to_string(steps));
             if (batch_size < 1) throw ValueError("batch_size: expected an integer >= 1, got " + std::to_string(batch_size));
             const Loss loss = Loss::parse(loss_name, delta);
             const Index rows = X.shape(0), in = n.in_features(), bs = std::min(batch_size, rows);
             auto target = make_target<T>(y, rows, n.out_features(), loss);
             const auto mask = owned_mask(n, owned);
             const StepOptions o = options(l1, l2, clip_norm, clip_value);
             check_optimizer(n, opt);
             py::array_t<double> losses(py::ssize_t{steps});
             double* out = losses.mutable_data();
             const Index batches = (rows + bs - 1) / bs;
             const Index done = release_gil_for_batch(bs, [&] {
               std::lock_guard<std::mutex> lock(n.mutex());
               for (Index s = 0; s < steps; ++s) {
                 const Index pos = (s % batches) * bs, m = std::min(bs, rows - pos);
                 out[s] = n.train_step(X.data() + pos * in, m, target.target.offset(pos), loss, opt, mask, o);
                 if (!std::isfinite(out[s])) return s + 1;
               }
               return steps;
             });
             if (done < steps) losses.resize({py::ssize_t{done}});
             return losses;
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta"), py::arg("optimizer"), py::arg("owned"),
           py::arg("l1"), py::arg("l2"), py::arg("clip_norm"), py::arg("clip_value"), py::arg("steps"),
           py::arg("batch_size"))
      // True when X (and y, unless None) already are exactly what the engine takes and hold only
      // finite values (int64 labels in range, where `labels`): Python then skips its slower checks.
      .def("batch_ok",
           [](const Net& n, py::handle X, py::handle y, bool labels) {
             if (!ready_matrix<T>(X, n.in_features())) return false;
             const auto a = py::reinterpret_borrow<py::array>(X);
             if (!all_finite(static_cast<const T*>(a.data()), Index(a.size()))) return false;
             if (y.is_none()) return true;
             const Index rows = a.shape(0), out = n.out_features();
             if (labels && py::isinstance<LabelArray>(y)) {
               const auto l = py::reinterpret_borrow<py::array>(y);
               if (l.ndim() != 1 || l.shape(0) != rows || !(l.flags() & py::array::c_style)) return false;
               const auto* p = static_cast<const std::int64_t*>(l.data());
               std::int64_t bad = 0;
               for (Index i = 0; i < rows; ++i) bad |= std::int64_t(p[i] < 0) | std::int64_t(p[i] >= out);
               return bad == 0;
             }
             if (!ready_matrix<T>(y, out) || py::reinterpret_borrow<py::array>(y).shape(0) != rows) return false;
             const auto t = py::reinterpret_borrow<py::array>(y);
             return all_finite(static_cast<const T*>(t.data()), Index(t.size()));
           },
           py::arg("X"), py::arg("y") = py::none(), py::arg("labels") = false)
      .def("step",
           [=](Net& n, Optimizer<T>& opt, std::optional<std::vector<bool>> owned) {
             const auto mask = owned_mask(n, owned);
             check_optimizer(n, opt);
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             n.step(opt, mask);
           },
           py::arg("optimizer"), py::arg("owned"))
      .def("clip_grad",
           [](Net& n, double max_norm, double max_value) {
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.clip(max_norm, max_value);
           })
      .def("grads_finite",
           [](Net& n) {
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.grads_finite();
           })
      .def("evaluate",
           [](Net& n, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta, Index batch,
              bool accuracy, bool errors) {
             check_matrix<T>(X, "X", n.in_features());
             const Loss loss = Loss::parse(loss_name, delta);
             auto target = make_target<T>(y, X.shape(0), n.out_features(), loss);
             Totals t;
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               t = evaluate<T>(n, X.data(), X.shape(0), target.target, loss, batch, MetricFlags{accuracy, errors});
             }
             return totals_dict(t);
           })
      .def("gradcheck",
           [](Net& n, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta,
              Index max_checks, std::uint64_t seed, bool training) {
             check_matrix<T>(X, "X", n.in_features());
             const Loss loss = Loss::parse(loss_name, delta);
             auto target = make_target<T>(y, X.shape(0), n.out_features(), loss);
             std::vector<GradcheckEntry> entries;
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               entries = gradcheck<T>(n, X.data(), X.shape(0), target.target, loss, max_checks, seed, training);
             }
             py::list out;
             for (auto& e : entries) {
               py::dict d;
               d["name"] = e.name; d["max_error"] = e.max_error; d["index"] = e.worst_index;
               d["checked"] = e.checked; d["analytic"] = e.analytic; d["numeric"] = e.numeric;
               out.append(d);
             }
             return out;
           });

  using PT = PyTrainer<T>;
  py::class_<PT>(m, (std::string("Trainer") + (sizeof(T) == 4 ? "32" : "64")).c_str())
      .def(py::init([=](py::object net_obj, py::object opt_obj, const Array<T>& X, const py::object& y,
                        const std::string& loss_name, double delta, Index batch_size, bool shuffle, std::uint64_t seed,
                        std::optional<std::vector<bool>> owned, double l1, double l2, double clip_norm,
                        double clip_value, bool accuracy, bool errors) {
             if (!py::isinstance<Net>(net_obj))
               throw py::type_error(std::string("net: expected a ") + name + ", got " + type_name(net_obj));
             if (!py::isinstance<Optimizer<T>>(opt_obj))
               throw py::type_error(std::string("optimizer: expected a ") + dtype_name<T>() + " optimizer, got " +
                                    type_name(opt_obj));
             auto& n = net_obj.template cast<Net&>();
             auto& opt = opt_obj.template cast<Optimizer<T>&>();
             check_matrix<T>(X, "X", n.in_features());
             check_optimizer(n, opt);
             const Loss loss = Loss::parse(loss_name, delta);
             auto pt = std::make_unique<PT>();
             pt->net_obj = net_obj; pt->opt_obj = opt_obj; pt->X_keep = X;
             pt->y = make_target<T>(y, X.shape(0), n.out_features(), loss);
             std::lock_guard<std::mutex> lock(n.mutex());
             pt->trainer = std::make_unique<Trainer<T>>(n, opt, owned_mask(n, owned), X.data(), X.shape(0),
                                                        pt->y.target, pt->y.cols, loss, batch_size, shuffle, seed,
                                                        options(l1, l2, clip_norm, clip_value),
                                                        MetricFlags{accuracy, errors});
             return pt;
           }),
           py::arg("net"), py::arg("optimizer"), py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta"),
           py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"), py::arg("owned"), py::arg("l1"),
           py::arg("l2"), py::arg("clip_norm"), py::arg("clip_value"), py::arg("accuracy"), py::arg("errors"))
      .def_property_readonly("batches_per_epoch", [](PT& t) { return t.trainer->batches_per_epoch(); })
      .def("begin_epoch", [](PT& t, std::optional<std::uint64_t> seed) { t.trainer->begin_epoch(seed); },
           py::arg("seed") = py::none())
      .def("run",
           [](PT& t, Index max_batches) {
             auto& n = t.net_obj.template cast<Net&>();
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return t.trainer->run(max_batches);
           })
      .def("totals", [](PT& t) { return totals_dict(t.trainer->totals()); });
}

void bind_network(py::module_& m) {
  bind_network_t<float>(m, "Network32");
  bind_network_t<double>(m, "Network64");
}

}  // namespace nativebp::bindings
