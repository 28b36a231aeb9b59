"""Figure builders for the uv-model chapters. Each returns a matplotlib Figure (no show, no
titles, no file writes); inputs are the Datasets of ``earlytrain.uv.phases``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ...uv.model import loss_on_plane
from .style import CONSTANT_COLORS, PHASE_COLORS, detach

_WIDTH_CMAP = plt.get_cmap("viridis")


def _width_colors(widths):
    n = len(widths)
    return {w: _WIDTH_CMAP(i / max(n - 1, 1) * 0.9) for i, w in enumerate(widths)}


def _summary(values, q=(0.25, 0.75)):
    """mean, lo, hi over the seed dimension (NaN-skipping), as numpy arrays over width."""
    v = values.values
    return np.nanmean(v, -1), np.nanquantile(v, q[0], -1), np.nanquantile(v, q[1], -1)


def _qbars(ax, pos, lo, hi, color, horizontal=True):
    """25-75% quantile bars drawn as segments (the mean of a skewed sample may lie outside them,
    which errorbar cannot draw)."""
    if horizontal:
        ax.hlines(pos, lo, hi, color=color, lw=1.2, alpha=0.8)
    else:
        ax.vlines(pos, lo, hi, color=color, lw=1.2, alpha=0.8)


def _phase_panel(ax, ds, names, labels, theory=None, theory_label=None):
    inv_w = 1.0 / ds.width.values
    curves = {}
    for name, label in zip(names, labels):
        mean, lo, hi = _summary(ds[name])
        key = "c_" + name.split("_", 1)[1] if not name.startswith("c_") else name
        color = CONSTANT_COLORS.get(key, CONSTANT_COLORS.get("c_sharp"))
        ax.plot(mean, inv_w, "o-", ms=4, color=color, label=label, lw=1.2)
        _qbars(ax, inv_w, lo, hi, color)
        curves[name] = mean
    lo_curve, mid_curve, hi_curve = (curves[n] for n in names)
    fills = [(np.full_like(lo_curve, 2.0), lo_curve, PHASE_COLORS["sharpness reduction"]),
             (lo_curve, mid_curve, PHASE_COLORS["loss catapult"]),
             (mid_curve, hi_curve, PHASE_COLORS["loss and sharpness catapult"])]
    for a, b, color in fills:
        ax.fill_betweenx(inv_w, a, b, color=color, alpha=0.8, lw=0, where=b >= a)
    right = np.nanmax(hi_curve) * 1.15
    ax.fill_betweenx(inv_w, hi_curve, right, color=PHASE_COLORS["divergent"], alpha=0.8, lw=0)
    ax.set_xlim(right=right)
    if theory is not None:
        ax.plot(theory[1], 1.0 / theory[0], "k--", lw=1.2, label=theory_label)
    ax.axvline(2, color="grey", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_ylabel(r"$1/w$")
    ax.legend(loc="lower right", fontsize=8)


def phase_diagrams(ds, theory=None):
    """Paper Fig. 7(a-c). ds: ``uv.phases.early_sweep``; theory: (widths, k_loss) drawn in (b), (c)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    _phase_panel(axes[0], ds, ["c_loss", "c_sharp", "c_max"],
                 [r"$c_{loss}$", r"$c_{sharp}$ ($\lambda^H_{max}$)", r"$c_{max}$"])
    axes[0].set_xlabel(r"$c = \eta\,\lambda^H_0$")
    _phase_panel(axes[1], ds, ["k_loss", "k_sharp", "k_max"],
                 [r"$k_{loss}$", r"$k_{sharp}$ (tr $H$)", r"$k_{max}$"], theory, r"$k_{loss}$ theory")
    axes[1].set_xlabel(r"$k = \eta\,\mathrm{tr}\,H_0$")
    _phase_panel(axes[2], ds, ["k_loss", "k_frob", "k_max"],
                 [r"$k_{loss}$", r"$k_{frob}$ ($\|H\|_F$)", r"$k_{max}$"], theory, r"$k_{loss}$ theory")
    axes[2].set_xlabel(r"$k = \eta\,\mathrm{tr}\,H_0$")
    for ax, tag in zip(axes, "abc"):
        ax.text(0.02, 0.97, f"({tag})", transform=ax.transAxes, va="top", fontweight="bold")
    return detach(fig)


def kloss_theory(ds, widths_fine, theory_fine, first_step=None):
    """Paper Fig. 11: simulated <k_loss> (25/75 bars) against the init-averaged first-step theory.
    Left: k_loss against w; right: k_loss - 2 on log-log axes."""
    w = ds.width.values
    mean, lo, hi = _summary(ds.k_loss)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, shift in zip(axes, (0.0, 2.0)):
        ax.plot(widths_fine, theory_fine - shift, "k-", lw=1.5, label=r"theory: $\langle L_1/L_0\rangle = 1$")
        if first_step is not None:
            ax.plot(w, first_step - shift, "s", mfc="none", color="#6a51a3", label=r"$\langle k_1(r)\rangle$ (first step, per init)")
        ax.plot(w, mean - shift, "o", ms=5, color=CONSTANT_COLORS["c_loss"],
                label=r"simulated $\langle k_{loss}\rangle$ ($T_1$ steps)")
        _qbars(ax, w, lo - shift, hi - shift, CONSTANT_COLORS["c_loss"], horizontal=False)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(r"width $w$")
    axes[0].set_ylabel(r"$k_{loss}$")
    axes[1].set_yscale("log")
    axes[1].set_ylabel(r"$k_{loss} - 2$")
    axes[1].plot(widths_fine, 1.0 / (widths_fine + 1), ":", color="grey", label=r"$4\langle r\rangle = 1/(w+1)$")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    return detach(fig)


def landscape(paths_list, levels=12):
    """Paper Fig. 8: GD paths (dots) and the straight line theta_0 -> theta_T (dashed) in the
    (tr H, rho) plane over contours of log L (exact on this plane). One panel per Dataset of
    ``uv.phases.landscape_paths``; pass them as a list of (title, Dataset, k)."""
    n = len(paths_list)
    ncol = 2
    fig, axes = plt.subplots(int(np.ceil(n / ncol)), ncol, figsize=(11, 4.0 * int(np.ceil(n / ncol))),
                             squeeze=False)
    for ax, (title, ds, k) in zip(axes.ravel(), paths_list):
        p = ds.sel(k=k)
        lam_max = float(max(p.lam.max(), p.lam_line.max())) * 1.1
        L, R = np.meshgrid(np.linspace(1e-3, lam_max, 300), np.linspace(-1, 1, 300))
        Z = np.log10(np.asarray(loss_on_plane(L, R, ds.attrs["y"], ds.attrs["gamma"])) + 1e-12)
        cs = ax.contourf(L, R, Z, levels=levels, cmap="Greys_r", alpha=0.75)
        ax.plot(p.lam, p.rho, "o-", ms=3, lw=0.8, color="#d94801", label="GD path")
        ax.plot(p.lam, p.cos, ".", ms=2, color="#fd8d3c", alpha=0.7, label=r"cosine $u\cdot v/|u||v|$")
        ax.plot(p.lam_line, p.rho_line, "--", color="#2171b5", lw=1.4,
                label=fr"line $\theta_0\to\theta_T$, $U$ = {float(p.barrier):.2g}")
        ax.plot(p.lam[0], p.rho[0], "k*", ms=10, label="start")
        ax.axvline(2 * ds.attrs["lam0"] / k, color="k", ls=":", lw=1, label=r"$\mathrm{tr}\,H = 2/\eta$")
        ax.set_xlabel(r"$\mathrm{tr}\,H$")
        ax.set_ylabel(r"$\rho = 2u\cdot v/(|u|^2+|v|^2)$")
        ax.set_ylim(-1, 1)
        ax.text(0.02, 0.97, title, transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(fc="white", alpha=0.8, lw=0))
        ax.legend(fontsize=7, loc="lower right")
        fig.colorbar(cs, ax=ax, label=r"$\log_{10} L$")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return detach(fig)


def saturation(sat):
    """Paper Fig. 10: chi = lambda_T/lambda_0 and its Savitzky-Golay derivatives against k, per width,
    with k_crit marked. sat: ``uv.phases.savgol_critical`` output."""
    widths = list(sat.width.values)
    colors = _width_colors(widths)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    k = 2.0 ** sat.x.values
    for w in widths:
        s = sat.sel(width=w)
        for ax, var in zip(axes, ("chi", "d1", "d2")):
            ax.plot(k, s[var], color=colors[w], label=f"$w$ = {w}")
            ax.axvline(float(s.k_crit), color=colors[w], ls=":", lw=1)
    labels = [r"$\chi = \langle\lambda_T/\lambda_0\rangle$", r"$d\chi/d\log_2 k$", r"$d^2\chi/d(\log_2 k)^2$"]
    for ax, lab in zip(axes, labels):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(r"$k = \eta\,\mathrm{tr}\,H_0$")
        ax.set_ylabel(lab)
        ax.axvline(2, color="grey", ls="--", lw=1)
    axes[0].legend(fontsize=8)
    return detach(fig)


def zero_init(ds_ntp, ds_zero_1, ds_zero_T, theory_fn=None):
    """App. G.3: (a) k_loss against 1/w for NTP (y = 0) and zero output at init (T1 = 1 and T1 steps);
    (b) mean first-step trace change lambda_1/lambda_0 - 1 against k, with the closed form."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ds, label, color in ((ds_ntp, r"NTP, $y=0$", CONSTANT_COLORS["c_loss"]),
                             (ds_zero_1, r"$f_0 = 0$, first step", "#d94801"),
                             (ds_zero_T, fr"$f_0 = 0$, $T_1$ = {ds_zero_T.attrs.get('steps', '')} steps", "#6a51a3")):
        mean, lo, hi = _summary(ds.k_loss)
        axes[0].plot(mean, 1.0 / ds.width.values, "o-", ms=4, color=color, label=label)
        _qbars(axes[0], 1.0 / ds.width.values, lo, hi, color)
    axes[0].axvline(2, color="grey", ls=":")
    axes[0].set_xscale("log", base=2)
    axes[0].set_yscale("log", base=2)
    axes[0].set_xlabel(r"$k_{loss}$")
    axes[0].set_ylabel(r"$1/w$")
    axes[0].legend(fontsize=8)
    widths = [w for w in ds_zero_1.width.values if w > 4]  # <1/lambda_0^2> is infinite for w <= 4
    colors = _width_colors(widths)
    k = ds_zero_1.grid.values
    for w in widths:
        axes[1].plot(k, ds_zero_1.trace_step1_k.sel(width=w), "o", ms=3, color=colors[w], label=f"$w$ = {w}",
                     markevery=max(len(k) // 25, 1), ls="none")
        if theory_fn is not None:
            axes[1].plot(k, theory_fn(k, w), "-", lw=1, color=colors[w])
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel(r"$k = \eta\,\mathrm{tr}\,H_0$")
    axes[1].set_ylabel(r"$\langle\lambda_1/\lambda_0\rangle - 1$")
    axes[1].legend(fontsize=7, title="dots: simulated, lines: theory", title_fontsize=7, loc="lower right", ncol=2)
    for ax, tag in zip(axes, "ab"):
        ax.text(0.02, 0.97, f"({tag})", transform=ax.transAxes, va="top", fontweight="bold")
    return detach(fig)


def regimes(traj, extra_lines=None):
    """Catapult regimes: loss and eta*lambda against step for each k of ``uv.phases.trajectories_at_k``."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.get_cmap("plasma")(np.linspace(0, 0.8, traj.sizes["k"]))
    for c, k in zip(colors, traj.k.values):
        t = traj.sel(k=k)
        lab = fr"$k$ = {k:g}" + (" (diverged)" if bool(t.diverged[-1]) else "")
        axes[0].plot(t.step, t.loss, color=c, label=lab)
        axes[1].plot(t.step, t.lr_lam, color=c, label=lab)
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"loss $L_t$")
    axes[1].axhline(2, color="k", ls="--", lw=1, label=r"$\eta\lambda = 2$")
    axes[1].axhline(4, color="grey", ls=":", lw=1, label=r"$\eta\lambda = 4$")
    axes[1].set_ylabel(r"$\eta\,\lambda_t$ ($\lambda$ = tr $H$ = NTK)")
    axes[1].set_ylim(0, 5)  # a diverging run leaves the frame upwards
    for ax in axes:
        ax.set_xlabel("step $t$")
        ax.legend(fontsize=8)
    return detach(fig)


def catapult_duration(ds, fits=None):
    """Steps to the catapult peak against width (log2 axis), mean and 25/75 bars, one colour per k;
    ``fits``: {k: (slope, intercept)} drawn as t = slope ln w + intercept."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    w = ds.width.values
    colors = plt.get_cmap("plasma")(np.linspace(0, 0.8, ds.sizes["k"]))
    for c, k in zip(colors, ds.k.values):
        mean, lo, hi = _summary(ds.t_peak.sel(k=k).astype(float))
        ax.plot(w, mean, "o", color=c, label=fr"$k$ = {k:g}")
        _qbars(ax, w, lo, hi, c, horizontal=False)
        if fits is not None:
            s, b = fits[float(k)]
            ax.plot(w, s * np.log(w) + b, "-", color=c, lw=1)
            ax.plot(w, np.log(w) / (2 * np.log(k - 1)) + (mean - np.log(w) / (2 * np.log(k - 1))).mean(),
                    ":", color=c, lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"width $w$")
    ax.set_ylabel(r"steps to the loss peak $t_{peak}$")
    ax.legend(fontsize=8, title="solid: fit, dotted: slope $1/(2\\ln(k-1))$", title_fontsize=8)
    return detach(fig)


def sharpening(traj_list):
    """Progressive sharpening and EoS: eta*lambda_t against step for several eta (one initial
    state each). traj_list: list of (label, steps [T], eta*lambda [T])."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = plt.get_cmap("plasma")(np.linspace(0, 0.85, len(traj_list)))
    for c, (label, t, y) in zip(colors, traj_list):
        ax.plot(t, y, color=c, lw=1, label=label)
    ax.axhline(2, color="k", ls="--", lw=1, label=r"$\eta\lambda = 2$ (EoS)")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, max(len(t) for _, t, _ in traj_list))
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\eta\,\lambda_t$")
    ax.legend(fontsize=8)
    return detach(fig)


def fixed_points(orbits, y, gamma):
    """The (Delta f, eta*lambda) plane, one panel per learning rate: the line of minima Delta f = 0
    (solid where stable, eta lambda < 2; dashed where not), the unreachable region lambda < 2 gamma |f|,
    and the orbit. orbits: list of (eta, label, df [T], lam [T]); the last 40 steps are circled."""
    fig, axes = plt.subplots(1, len(orbits), figsize=(5.5 * len(orbits), 4.4), squeeze=False)
    for ax, (lr, label, d, lam) in zip(axes[0], orbits):
        top = max(2.6, float(np.nanmax(lr * lam)) * 1.08)
        df = np.linspace(min(-1.6 * abs(y), float(np.nanmin(d)) - 0.1), max(0.6 * abs(y), float(np.nanmax(d)) + 0.1), 400)
        ax.fill_between(df, 0, np.minimum(lr * 2 * gamma * np.abs(y + df), top), color="#d9d9d9",
                        label=r"unreachable: $\lambda < 2\gamma|f|$")
        floor = lr * 2 * gamma * abs(y)
        if floor < 2:
            ax.plot([0, 0], [floor, 2], "-", color="#2171b5", lw=4, label="minima, stable")
        ax.plot([0, 0], [max(floor, 2), top], "--", color="#cb181d", lw=3, label="minima, unstable")
        ax.plot(d, lr * lam, "o-", ms=2, lw=0.6, color="#6a51a3", label="GD orbit")
        ax.plot(d[-40:], lr * lam[-40:], "o", ms=7, mfc="none", color="#d94801", label="last 40 steps")
        ax.axhline(2, color="k", ls=":", lw=1)
        ax.set_ylim(0, top)
        ax.set_xlabel(r"$\Delta f = f - y$")
        ax.set_ylabel(r"$\eta\,\lambda$")
        ax.text(0.98, 0.03, label, transform=ax.transAxes, ha="right", fontsize=10,
                bbox=dict(fc="white", alpha=0.8, lw=0))
        ax.legend(fontsize=7, loc="upper left")
    return detach(fig)


def bifurcation(ds):
    """Late-time eta*lambda against eta (``uv.phases.bifurcation``), with eta_c marked."""
    fig, ax = plt.subplots(figsize=(9, 4.6))
    lr = np.repeat(ds.lr.values, ds.sizes["sample"])
    ax.plot(lr, ds.lr_lam.values.ravel(), ",", color="k", alpha=0.6)
    ax.axvline(ds.attrs["lr_c"], color="#2171b5", ls="--", lw=1, label=r"$\eta_c = 1/(\gamma|y|)$")
    ax.axhline(2, color="#d94801", ls=":", lw=1, label=r"$\eta\lambda = 2$")
    div = ds.diverged.values
    if div.any():
        ax.axvspan(ds.lr.values[div].min(), ds.lr.values.max(), color=PHASE_COLORS["divergent"], alpha=0.6,
                   label="diverged", lw=0)
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel(r"late-time $\eta\,\lambda_t$")
    finite = ds.lr_lam.values[np.isfinite(ds.lr_lam.values)]
    ax.set_ylim(0, float(finite.max()) * 1.05 if finite.size else 4)
    ax.legend(fontsize=8, loc="upper left")
    return detach(fig)


def network_catapult(traj):
    """Loss and eta*lambda_t = c * lambda_t / lambda_0 against step for a network
    (``sweep.trajectory_sweep`` with sharpness, one depth, width and seed) at each c."""
    t = traj.isel(depth=0, width=0, seed=0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.get_cmap("plasma")(np.linspace(0, 0.8, t.sizes["c"]))
    for col, c in zip(colors, t.c.values):
        r = t.sel(c=c)
        lab = fr"$\eta\lambda_0$ = {c:g}" + (" (diverged)" if bool(r.diverged.values.any()) else "")
        axes[0].plot(r.step, r.loss, "o-", ms=3, color=col, label=lab)
        axes[1].plot(r.step, c * r.sharpness / r.sharpness.isel(step=0), "o-", ms=3, color=col, label=lab)
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"loss $L_t$ (measurement subset)")
    axes[1].axhline(2, color="k", ls="--", lw=1, label=r"$\eta\lambda = 2$")
    axes[1].set_ylabel(r"$\eta\,\lambda_t$ ($\lambda$ = top Hessian eigenvalue)")
    axes[1].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("step $t$")
        ax.legend(fontsize=8)
    return detach(fig)


def test_accuracy(ds, best=None):
    """Test accuracy after a fixed number of SGD steps against c (``generalisation.test_accuracy``),
    one line per initialisation; the catapult window 2 < c <= c_max of each (shaded, from
    ``generalisation.best_c``) and its best c (star)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.8, ds.sizes["seed"]))
    for i, (col, s) in enumerate(zip(colors, ds.seed.values)):
        r = ds.test_accuracy.sel(seed=s)
        ax.plot(ds.c, r, "o-", ms=4, color=col, label=f"seed {s}")
        if best is not None and np.isfinite(float(best.best_c.sel(seed=s))):
            b = float(best.best_c.sel(seed=s))
            ax.plot([b], [float(r.sel(c=b))], "*", ms=14, color=col, mec="k")
            ax.axvspan(2, float(best.c_max.sel(seed=s)), color=col, alpha=0.08)
    ax.axvline(2, color="k", ls="--", lw=1, label="$c = 2$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"$c = \eta\lambda_0$")
    ax.set_ylabel(f"test accuracy after {ds.attrs.get('steps', '?')} SGD steps")
    ax.legend(fontsize=8)
    return detach(fig)
