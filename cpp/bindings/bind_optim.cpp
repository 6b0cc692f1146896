// Bindings for the optimizers: constructors with PyTorch's keyword names, hyper-parameters as
// attributes, and the state (moment buffers, per-tensor steps) as numpy views for saving.
#include <nativebp/network.hpp>
#include <nativebp/optim/adagrad.hpp>
#include <nativebp/optim/adam.hpp>
#include <nativebp/optim/rmsprop.hpp>
#include <nativebp/optim/sgd.hpp>

#include "common.hpp"

namespace nativebp::bindings {

template <typename T>
void bind_optim_t(py::module_& m, const std::string& sfx) {
  using Opt = Optimizer<T>;
  py::class_<Opt>(m, ("Optimizer" + sfx).c_str())
      .def_readwrite("lr", &Opt::lr)
      .def_property_readonly("kind", &Opt::kind)
      .def("state_names",
           [](Opt& o) {
             std::vector<std::string> names;
             for (auto& kv : o.state()) names.push_back(kv.first);
             return names;
           })
      .def("state_array",
           [](py::object self, const std::string& name) {
             auto& o = self.template cast<Opt&>();
             auto st = o.state();
             auto it = st.find(name);
             if (it == st.end()) throw ValueError("optimizer state: no buffer named '" + name + "'");
             return view(it->second->data(), {py::ssize_t(it->second->size())}, self);
           })
      .def_property(
          "steps", [](Opt& o) { return o.steps(); },
          [](Opt& o, const std::vector<std::int64_t>& s) {
            for (auto v : s)  // a negative count would make Adam's bias correction divide by zero
              if (v < 0) throw ValueError("steps: expected step counts >= 0, got " + std::to_string(v));
            o.steps() = s;
          })
      .def("reset_state", &Opt::reset_state);

  auto total = [](const Network<T>& net) { return Index(net.slices().empty() ? 0 : net.slices().back().offset + net.slices().back().size); };

  py::class_<SGD<T>, Opt>(m, ("SGD" + sfx).c_str())
      .def(py::init([=](const Network<T>& net, double lr, double momentum, double dampening, double weight_decay,
                        bool nesterov) {
             return std::make_unique<SGD<T>>(total(net), lr, momentum, dampening, weight_decay, nesterov);
           }))
      .def_readwrite("momentum", &SGD<T>::momentum)
      .def_readwrite("dampening", &SGD<T>::dampening)
      .def_readwrite("weight_decay", &SGD<T>::weight_decay)
      .def_readwrite("nesterov", &SGD<T>::nesterov);

  py::class_<Adagrad<T>, Opt>(m, ("Adagrad" + sfx).c_str())
      .def(py::init([=](const Network<T>& net, double lr, double lr_decay, double weight_decay, double init_acc,
                        double eps) {
             return std::make_unique<Adagrad<T>>(total(net), lr, lr_decay, weight_decay, init_acc, eps);
           }))
      .def_readwrite("lr_decay", &Adagrad<T>::lr_decay)
      .def_readwrite("weight_decay", &Adagrad<T>::weight_decay)
      .def_readwrite("eps", &Adagrad<T>::eps);

  py::class_<RMSprop<T>, Opt>(m, ("RMSprop" + sfx).c_str())
      .def(py::init([=](const Network<T>& net, double lr, double alpha, double eps, double weight_decay,
                        double momentum, bool centered) {
             return std::make_unique<RMSprop<T>>(total(net), lr, alpha, eps, weight_decay, momentum, centered);
           }))
      .def_readwrite("alpha", &RMSprop<T>::alpha)
      .def_readwrite("eps", &RMSprop<T>::eps)
      .def_readwrite("weight_decay", &RMSprop<T>::weight_decay)
      .def_readwrite("momentum", &RMSprop<T>::momentum);

  py::class_<Adam<T>, Opt>(m, ("Adam" + sfx).c_str())
      .def(py::init([=](const Network<T>& net, double lr, double beta1, double beta2, double eps, double weight_decay,
                        bool amsgrad, bool decoupled) {
             return std::make_unique<Adam<T>>(total(net), lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled);
           }))
      .def_readwrite("beta1", &Adam<T>::beta1)
      .def_readwrite("beta2", &Adam<T>::beta2)
      .def_readwrite("eps", &Adam<T>::eps)
      .def_readwrite("weight_decay", &Adam<T>::weight_decay);
}

void bind_optim(py::module_& m) {
  bind_optim_t<float>(m, "32");
  bind_optim_t<double>(m, "64");
}

}  // namespace nativebp::bindings
