// The native executor of ttedge.tt.apply's programs: the same instructions the generated Python
// functions run (ttedge/tt/apply.py, _compile), executed here without the interpreter, as one
// autograd node whose backward runs in C++. Built on demand by ttedge/tt/native.py.
//
// An instruction is a row of integers: opcode, destination register, source count, sources, then
// its integer arguments. The opcodes are the order of apply.OPCODES, passed in at registration and
// checked against the names below so that the two lists cannot drift apart.

#include <torch/extension.h>

#include <mutex>
#include <string>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const std::vector<std::string> kOps = {"reshape", "t", "transpose", "permute", "expand", "mm", "addmm", "bmm",
                                       "gather", "sum0", "tensordot02", "add_", "if_needs", "if_bias", "if_nobias"};
enum Op : int64_t { RESHAPE, T, TRANSPOSE, PERMUTE, EXPAND, MM, ADDMM, BMM, GATHER, SUM0, TENSORDOT02, ADD_,
                    IF_NEEDS, IF_BIAS, IF_NOBIAS };

struct Ins {
  int64_t op, dst;
  std::vector<int64_t> src, ints;
};

struct Program {
  int64_t registers;
  std::vector<Ins> forward, backward;
  int64_t x, bias, grad, y;
  std::vector<int64_t> cores, saved, outs;  // outs: gx, gb, d0 .. d{n-1}
  std::vector<std::pair<int64_t, at::Tensor>> consts;
};

std::mutex registry_lock;
std::vector<std::shared_ptr<const Program>> registry;  // programs are few and live as long as the process

std::vector<Ins> decode(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<Ins> code;
  for (const auto& r : rows) {
    TORCH_CHECK(r.size() >= 3 && r[2] >= 0 && static_cast<int64_t>(r.size()) >= 3 + r[2], "malformed instruction");
    TORCH_CHECK(r[0] >= 0 && r[0] < static_cast<int64_t>(kOps.size()), "unknown opcode ", r[0]);
    code.push_back({r[0], r[1], {r.begin() + 3, r.begin() + 3 + r[2]}, {r.begin() + 3 + r[2], r.end()}});
  }
  return code;
}

// A registered program, and a register file for one run of it with its constants in place.
std::shared_ptr<const Program> lookup(int64_t id) {
  std::lock_guard<std::mutex> hold(registry_lock);
  return registry.at(id);
}

std::vector<at::Tensor> registers(const Program& p) {
  std::vector<at::Tensor> r(p.registers);
  for (const auto& [k, v] : p.consts) r[k] = v;
  return r;
}

// needs: per node input (0 x, 1 bias, 2 + k core k) whether a gradient is wanted
void run(const std::vector<Ins>& code, std::vector<at::Tensor>& r, const std::vector<bool>& needs, bool has_bias) {
  for (size_t i = 0; i < code.size(); ++i) {
    const Ins& c = code[i];
    const auto& s = c.src;
    switch (c.op) {
      case RESHAPE: r[c.dst] = r[s[0]].reshape(c.ints); break;
      case T: r[c.dst] = r[s[0]].t(); break;
      case TRANSPOSE: r[c.dst] = r[s[0]].transpose(c.ints[0], c.ints[1]); break;
      case PERMUTE: r[c.dst] = r[s[0]].permute(c.ints); break;
      case EXPAND: r[c.dst] = r[s[0]].expand(c.ints); break;
      case MM: r[c.dst] = at::mm(r[s[0]], r[s[1]]); break;
      case ADDMM: r[c.dst] = at::addmm(r[s[0]], r[s[1]], r[s[2]]); break;
      case BMM: r[c.dst] = at::bmm(r[s[0]], r[s[1]]); break;
      case GATHER: r[c.dst] = r[s[0]].index_select(0, r[s[1]]); break;
      case SUM0: r[c.dst] = r[s[0]].sum(0); break;
      case TENSORDOT02: r[c.dst] = at::tensordot(r[s[0]], r[s[1]], {0, 2}, {0, 2}); break;
      case ADD_: r[c.dst] = r[s[0]].add_(r[s[1]]); break;
      case IF_NEEDS: {
        bool any = false;
        for (size_t k = 1; k < c.ints.size(); ++k) any = any || needs[c.ints[k]];
        if (!any) i += c.ints[0];
        break;
      }
      case IF_BIAS: if (!has_bias) i += c.ints[0]; break;
      case IF_NOBIAS: if (has_bias) i += c.ints[0]; break;
      default: TORCH_CHECK(false, "unknown opcode ", c.op);
    }
  }
}

struct TTContract : public torch::autograd::Function<TTContract> {
  // inputs: x, then the bias if has_bias, then the cores
  static at::Tensor forward(AutogradContext* ctx, int64_t id, bool has_bias, at::TensorList inputs) {
    const auto p = lookup(id);
    auto r = registers(*p);
    size_t at = 0;
    r[p->x] = inputs[at++];
    if (has_bias) r[p->bias] = inputs[at++];
    for (int64_t k : p->cores) r[k] = inputs[at++];
    run(p->forward, r, {}, has_bias);
    variable_list saved;
    for (int64_t k : p->saved) saved.push_back(r[k]);
    ctx->save_for_backward(saved);
    ctx->saved_data["id"] = id;
    ctx->saved_data["has_bias"] = has_bias;
    ctx->saved_data["x_shape"] = inputs[0].sizes().vec();
    return r[p->y];
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t id = ctx->saved_data["id"].toInt();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const auto p = lookup(id);
    // the node's edges are x, (bias,) cores; the program's needs are x, bias, cores
    const size_t first_core = has_bias ? 2 : 1;
    std::vector<bool> needs(2 + p->cores.size());
    needs[0] = ctx->needs_input_grad(0);
    needs[1] = has_bias && ctx->needs_input_grad(1);
    for (size_t k = 0; k < p->cores.size(); ++k) needs[2 + k] = ctx->needs_input_grad(first_core + k);
    auto r = registers(*p);
    auto saved = ctx->get_saved_variables();
    for (size_t k = 0; k < p->saved.size(); ++k) r[p->saved[k]] = saved[k];
    r[p->grad] = grads[0];
    run(p->backward, r, needs, has_bias);
    variable_list out = {at::Tensor(), at::Tensor()};  // id, has_bias
    const at::Tensor& gx = r[p->outs[0]];
    out.push_back(needs[0] && gx.defined() ? gx.reshape(ctx->saved_data["x_shape"].toIntVector()) : at::Tensor());
    if (has_bias) out.push_back(needs[1] ? r[p->outs[1]] : at::Tensor());
    for (size_t k = 0; k < p->cores.size(); ++k) out.push_back(needs[2 + k] ? r[p->outs[2 + k]] : at::Tensor());
    return out;
  }
};

int64_t add_program(const std::vector<std::string>& opcodes, int64_t registers,
                    const std::vector<std::vector<int64_t>>& forward, const std::vector<std::vector<int64_t>>& backward,
                    int64_t x, int64_t bias, int64_t grad, int64_t y, const std::vector<int64_t>& cores,
                    const std::vector<int64_t>& saved, const std::vector<int64_t>& outs,
                    const std::vector<int64_t>& const_registers, const std::vector<at::Tensor>& const_values) {
  TORCH_CHECK(opcodes == kOps, "the executor's opcodes differ from the compiler's; rebuild it");
  TORCH_CHECK(const_registers.size() == const_values.size() && outs.size() == 2 + cores.size(), "malformed program");
  auto p = std::make_shared<Program>();
  p->registers = registers;
  p->forward = decode(forward);
  p->backward = decode(backward);
  p->x = x, p->bias = bias, p->grad = grad, p->y = y;
  p->cores = cores, p->saved = saved, p->outs = outs;
  for (size_t k = 0; k < const_registers.size(); ++k) p->consts.emplace_back(const_registers[k], const_values[k]);
  std::lock_guard<std::mutex> hold(registry_lock);
  registry.push_back(p);
  return static_cast<int64_t>(registry.size()) - 1;
}

at::Tensor apply(int64_t id, const at::Tensor& x, const std::optional<at::Tensor>& bias, const std::vector<at::Tensor>& cores) {
  std::vector<at::Tensor> inputs = {x};
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias) inputs.push_back(*bias);
  inputs.insert(inputs.end(), cores.begin(), cores.end());
  return TTContract::apply(id, has_bias, at::TensorList(inputs));
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("add_program", &add_program, "register a program; returns its id");
  m.def("apply", &apply, "run a registered program as one autograd node");
}
