"""rnncore.torch under autograd: inference path, double backward, dropout seeds,
weights edited between calls, zero copies, TorchScript and torch.compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
import rnncore._rnncore as kernels  # noqa: E402
from rnncore.torch import _checks  # noqa: E402


def lstm(**kwargs):
    torch.manual_seed(0)
    return rt.LSTM(4, 3, num_layers=2, **kwargs)


def test_no_grad_and_requires_grad_false_record_nothing():
    m = lstm()
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        out, (h, c) = m(x)
    assert out.grad_fn is None and h.grad_fn is None and c.grad_fn is None
    m.requires_grad_(False)
    out2, _ = m(x)
    assert out2.grad_fn is None
    torch.testing.assert_close(out2, out, rtol=0, atol=0)
    m.requires_grad_(True)
    out3, _ = m(x)
    assert out3.grad_fn is not None
    torch.testing.assert_close(out3, out, rtol=0, atol=0)


def test_double_backward_is_refused():
    m = lstm(dtype=torch.float64)
    x = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    out, _ = m(x)
    with pytest.raises(_checks.UnsupportedError, match="no double backward"):
        torch.autograd.grad(out.sum(), x, create_graph=True)
    (gx,) = torch.autograd.grad(out.sum(), x)  # the graph is still usable once
    assert gx.shape == x.shape


def test_dropout_follows_torch_manual_seed():
    m = lstm(dropout=0.5)
    x = torch.randn(6, 3, 4)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        out, _ = m(x)
        (g,) = torch.autograd.grad(out.sum(), m.weight_ih_l0)
        runs.append((out, g))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=0, atol=0)
    torch.manual_seed(124)
    assert not torch.equal(m(x)[0], runs[0][0])  # another seed, another mask
    m.eval()
    a, b = m(x)[0], m(x)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # no dropout in eval mode


def test_dropout_matches_the_reference_mask_rule():
    """Training output with dropout = the layers run by hand with the same torch mask."""
    m = lstm(dropout=0.25, dtype=torch.float64)
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    torch.manual_seed(7)
    out, _ = m(x)
    torch.manual_seed(7)
    keep = (torch.rand(5, 2, 3, dtype=torch.float64) >= 0.25).double() / 0.75
    m0 = torch.nn.LSTM(4, 3, dtype=torch.float64)
    m1 = torch.nn.LSTM(3, 3, dtype=torch.float64)
    sd = m.state_dict()
    m0.load_state_dict({k.replace("_l0", "_l0"): v for k, v in sd.items() if k.endswith("_l0")})
    m1.load_state_dict({k.replace("_l1", "_l0"): v for k, v in sd.items() if k.endswith("_l1")})
    expected, _ = m1(m0(x)[0] * keep)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("how", ["optimizer", "in_place", "load_state_dict"])
def test_weight_changes_are_seen_by_the_next_forward(how):
    m = lstm(dtype=torch.float64)
    twin = torch.nn.LSTM(4, 3, num_layers=2, dtype=torch.float64)
    twin.load_state_dict(m.state_dict())
    x = torch.randn(5, 2, 4, dtype=torch.float64)
    before, _ = m(x)
    if how == "optimizer":
        for module in (m, twin):
            opt = torch.optim.SGD(module.parameters(), lr=0.5)
            module(x)[0].pow(2).sum().backward()
            opt.step()
    elif how == "in_place":
        with torch.no_grad():
            for module in (m, twin):
                module.weight_hh_l1.mul_(-2.0)
                module.bias_ih_l0.add_(0.3)
    else:
        other = torch.nn.LSTM(4, 3, num_layers=2, dtype=torch.float64)
        m.load_state_dict(other.state_dict())
        twin.load_state_dict(other.state_dict())
    after, _ = m(x)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, twin(x)[0], rtol=1e-10, atol=1e-12)


def test_in_place_edit_between_forward_and_backward_is_caught():
    m = lstm()
    out, _ = m(torch.randn(3, 2, 4))
    with torch.no_grad():
        m.weight_hh_l0.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_forward_shares_memory_with_the_kernel(monkeypatch):
    """Contiguous float32 input reaches the kernel, and its output comes back, uncopied."""
    seen = []
    original = kernels.forward

    def spy(mode, x, h0, c0, *rest, **kw):
        result = original(mode, x, h0, c0, *rest, **kw)
        seen.append((x.ctypes.data, result[0].ctypes.data, kw.get("keep", True)))
        return result

    monkeypatch.setattr(kernels, "forward", spy)
    m = rt.LSTM(4, 3)
    x = torch.randn(5, 2, 4, requires_grad=True)
    out, _ = m(x)
    ((x_ptr, out_ptr, keep),) = seen
    assert x_ptr == x.data_ptr()
    assert out_ptr == out.data_ptr()
    assert keep  # a backward follows
    with torch.no_grad():
        out, _ = m(x)
    assert seen[1] == (x.data_ptr(), out.data_ptr(), False)  # the inference path


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")
def test_torchscript_is_refused_clearly():
    with pytest.raises(_checks.UnsupportedError, match=r"TorchScript.*torch\.nn\.LSTM"):
        torch.jit.script(lstm())
    with pytest.raises(_checks.UnsupportedError, match="TorchScript"):
        torch.jit.script(torch.nn.Sequential(rt.GRUCell(2, 3)))


def test_torch_compile_runs_the_module():
    m = lstm(dtype=torch.float64)
    x = torch.randn(4, 2, 4, dtype=torch.float64)
    compiled = torch.compile(m, backend="eager")
    torch.testing.assert_close(compiled(x)[0], m(x)[0], rtol=0, atol=0)


def test_other_devices_are_refused():
    with pytest.raises(_checks.DeviceError, match=r"use torch\.nn\.LSTM on cuda"):
        rt.LSTM(4, 3, device="cuda")
    with pytest.raises(_checks.DeviceError, match=r"torch\.nn\.GRUCell on meta"):
        rt.GRUCell(4, 3)(torch.empty(2, 4, device="meta"))


def test_non_contiguous_input_is_used_once_contiguous():
    m = lstm(dtype=torch.float64)
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    out_t, _ = m(x.transpose(0, 1))  # (T, N, D) view of (N, T, D) memory
    out_c, _ = m(x.transpose(0, 1).contiguous())
    torch.testing.assert_close(out_t, out_c, rtol=0, atol=0)


def test_results_do_not_depend_on_the_thread_count():
    m = rt.GRU(8, 16, num_layers=2, bidirectional=True)
    x = torch.randn(7, 5, 8, requires_grad=True)
    runs = []
    for n in (1, 2):
        kernels.set_num_threads(n)
        try:
            out, _ = m(x)
            runs.append((out, *torch.autograd.grad(out.sum(), [x, *m.parameters()])))
        finally:
            kernels.set_num_threads(None)
    for a, b in zip(*runs):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_parameter_gradients_are_the_kernel_buffers(monkeypatch):
    """The backward hands the kernel's gradient arrays to autograd, which keeps them."""
    from rnncore.torch import _function

    buffers = {}
    original = _function._BoundStack._add_grad

    def spy(self, name, d):
        buffers[name] = d.ctypes.data
        original(self, name, d)

    monkeypatch.setattr(_function._BoundStack, "_add_grad", spy)
    m = rt.LSTM(8, 16, 2, bidirectional=True)
    m(torch.randn(5, 3, 8, requires_grad=True))[0].sum().backward()
    assert set(buffers) == set(m._flat_weights_names)
    for name in m._flat_weights_names:
        assert getattr(m, name).grad.data_ptr() == buffers[name], name
