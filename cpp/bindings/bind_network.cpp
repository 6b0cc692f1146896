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
std::vector<LayerPtr<T>> make_layers(const py::list& specs);

template <typename T>
LayerPtr<T> make_layer(const py::dict& s) {
  const auto type = py::cast<std::string>(s["type"]);
  auto num = [&](const char* k) { return py::cast<double>(s[k]); };
  auto idx = [&](const char* k) { return py::cast<Index>(s[k]); };
  if (type == "dense")
    return std::make_unique<Dense<T>>(idx("in_features"), idx("out_features"), py::cast<bool>(s["bias"]),
                                      Init{py::cast<std::string>(s["init"]), num("init_arg")},
                                      Init{py::cast<std::string>(s["bias_init"]), num("init_arg")});
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
    return std::make_unique<BatchNorm1d<T>>(idx("num_features"), num("eps"), num("momentum"), py::cast<bool>(s["affine"]));
  if (type == "layernorm")
    return std::make_unique<LayerNorm<T>>(idx("num_features"), num("eps"), py::cast<bool>(s["affine"]));
  if (type == "residual") return std::make_unique<Residual<T>>(make_layers<T>(py::cast<py::list>(s["layers"])));
  throw ValueError("unknown layer type '" + type + "'");
}

template <typename T>
std::vector<LayerPtr<T>> make_layers(const py::list& specs) {
  std::vector<LayerPtr<T>> out;
  for (auto s : specs) out.push_back(make_layer<T>(py::cast<py::dict>(s)));
  return out;
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
             return std::make_unique<Net>(make_layers<T>(specs), in_features, seed);
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
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               auto Z = n.forward(X.data(), rows, training);
               std::copy(Z.data(), Z.data() + Z.size(), dst);
             }
             return out;
           },
           py::arg("X"), py::arg("training") = false)
      .def("loss_and_grad",
           [](Net& n, const Array<T>& X, const py::object& y, const std::string& loss_name, double delta,
              bool want_dx, bool training) -> py::tuple {
             check_matrix<T>(X, "X", n.in_features());
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
             double value;
             {
               py::gil_scoped_release release;
               std::lock_guard<std::mutex> lock(n.mutex());
               value = n.loss_and_grad(X.data(), rows, target.target, loss, dxp, training);
             }
             return py::make_tuple(value, dx);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta") = 1.0, py::arg("want_dx") = false,
           py::arg("training") = true)
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
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.train_step(X.data(), X.shape(0), target.target, loss, opt, mask, o);
           },
           py::arg("X"), py::arg("y"), py::arg("loss"), py::arg("delta"), py::arg("optimizer"), py::arg("owned"),
           py::arg("l1") = 0.0, py::arg("l2") = 0.0, py::arg("clip_norm") = 0.0, py::arg("clip_value") = 0.0)
      .def("step",
           [=](Net& n, Optimizer<T>& opt, std::optional<std::vector<bool>> owned) {
             const auto mask = owned_mask(n, owned);
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             n.step(opt, mask);
           })
      .def("clip_grad",
           [](Net& n, double max_norm, double max_value) {
             py::gil_scoped_release release;
             std::lock_guard<std::mutex> lock(n.mutex());
             return n.clip(max_norm, max_value);
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
             auto& n = net_obj.template cast<Net&>();
             auto& opt = opt_obj.template cast<Optimizer<T>&>();
             check_matrix<T>(X, "X", n.in_features());
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
