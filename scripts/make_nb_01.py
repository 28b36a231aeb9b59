"""Writes book/01_phase_diagram.ipynb (kept as a script so the notebook's source is reviewable)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = []
cells.append(md(r"""# The early transient: a phase diagram

**Claim** (Kalra & Barkeshli 2023, Sec. 2). In the first $T_1 = 10$ steps of SGD with learning
rate $\eta = c/\lambda^H_0$, the loss of a wide, shallow network starts to rise ("catapult") as
soon as $c$ exceeds about 2, as for a quadratic loss. As the depth-to-width ratio $d/w$ grows, the
loss keeps falling up to much larger $c$: an intermediate *sharpness-reduction* phase opens,
$2 < c < c_{loss}$, in which loss and sharpness both decrease. The critical constants are ordered,
$c_{loss} \le c_{sharp} \le c_{max}$, for each initialisation.

The constants (Definition 1) use $\tilde L_t = L_t/L_0$, $\tilde\lambda_t = \lambda^H_t/\lambda^H_0$
and $\mathrm{rd}$, rounding to two decimals:

$$c_{loss}=\min\{c:\ \max_{1\le t\le T_1}\mathrm{rd}(\tilde L_t)>1\},\quad
c_{sharp}=\min\{c:\ \max_{1\le t\le T_1}\mathrm{rd}(\tilde\lambda_t)>1\},\quad
c_{max}=\max\{c:\ L_t<K\ \forall t\le T_1\}.$$

Networks: ReLU FCNs without bias at criticality ($\sigma_w^2 = 2$, readout variance 1, standard
parameterisation), MSE loss $L = \frac{1}{2Bk}\sum (f - y)^2$, SGD with batch size 512. The
sharpness is the top Hessian eigenvalue (Lanczos, full re-orthogonalisation) of the loss on a fixed
measurement subset of the training data that never consumes SGD batches."""))
cells.append(code("""from myst_nb import glue
import numpy as np
from earlytrain import claims, sweep
from earlytrain.plotting import phase, use_style
from earlytrain.params import check_injected

use_style()""", metadata={"tags": ["hide-input"]}))
cells.append(code("""# Width diagram (paper Fig. 3a: FCNs on MNIST)
width_dataset = "mnist"          # data set
width_depth = 4                  # depth d of every network in the width diagram
widths = [32, 64, 128, 256, 1024]  # widths w (paper: 256 .. 2048 at depth 8)
# Depth diagram (paper Fig. 3d: FCNs on Fashion-MNIST)
depth_dataset = "fashion_mnist"  # data set
depths = [4, 6, 8]               # depths d
depth_widths = [64, 128]         # the fixed widths w of the depth diagram (paper: three, not known)
# Shared
seeds = [1, 2, 3]                # initialisations I, PRNGKey(I) (paper: 10)
n_train = 4096                   # SGD pool: a seeded subset of the training split (paper: all 60k)
n_measure = 512                  # measurement subset for loss and sharpness (paper: 4096)
batch_size = 512                 # SGD batch size B
num_steps = 10                   # T1, steps of the early transient
x_min = 0.0                      # c grid: c = 2^x from x_min ...
x_max = 6.0                      # ... to x_max ...
x_step = 0.1                     # ... in steps of 0.1 (the paper's grid)
search = "bisect"                # "grid" (the paper's full grid), "coarse_to_fine" or "bisect"
c_sharp_max_width = 256          # widths above this skip c_sharp (costliest measurement)
sharpness_method = "lanczos"     # "lanczos" or "power" (the paper's code)
sharpness_iters = 20             # cap on the Hessian-vector products of one measurement (it stops at sharpness_tol = 1e-3)
# Trajectories (paper Fig. 2 a, b, d, e)
wide_shallow = [4, 256]          # (d, w) of the wide, shallow network
narrow_deep = [8, 32]            # (d, w) of the narrow, deep network
traj_c = [1.0, 2.0, 2.5, 3.0, 4.0, 8.0, 16.0]  # constants c shown
traj_dataset = "mnist"           # data set of the trajectories""", metadata={"tags": ["parameters"]}))
cells.append(code("""check_injected()  # a parameter the cell above does not declare is an error
common = dict(seeds=seeds, n_train=n_train, n_measure=n_measure, batch_size=batch_size,
              num_steps=num_steps, T1=num_steps, x_min=x_min, x_max=x_max, x_step=x_step, search=search,
              c_sharp_max_width=c_sharp_max_width, sharpness_method=sharpness_method,
              sharpness_iters=sharpness_iters)
cfg_width = sweep.from_params(dataset=width_dataset, depths=[width_depth], widths=widths, **common)
cfg_depth = sweep.from_params(dataset=depth_dataset, depths=depths, widths=depth_widths, **common)
print(sweep.summary(cfg_width, "Width diagram"))
print(f"Depth diagram: dataset = {depth_dataset}, depths = {depths}, widths = {depth_widths}")
print(f"Trajectories: {traj_dataset}, (d, w) = {wide_shallow} and {narrow_deep}, c = {traj_c}")
CH = "01_phase_diagram"
claims.start(CH, f"FCNs: width diagram d = {width_depth}, w = {widths} on {width_dataset}; depth diagram d = {depths}, "
             f"w = {depth_widths} on {depth_dataset}; {len(seeds)} inits, SGD pool {n_train}, B = {batch_size}, "
             f"T1 = {num_steps}, grid step {x_step}, c_sharp up to w = {c_sharp_max_width}")"""))
cells.append(md(r"""## Loss and sharpness in the first steps

**Claim.** For a wide, shallow network the loss rises as soon as $c > 2$, while for a narrow,
deep one it keeps decreasing until $c$ is several times larger; over the same range the sharpness
of the deep network falls sharply (sharpness reduction). Each curve below is one learning rate,
from one initialisation (seed {glue:text}`pd-traj-seed`), with $\tilde L_t$ on the left and
$\tilde\lambda_t$ on the right, both on a log scale."""))
cells.append(code("""traj_cfg = lambda d, w: sweep.from_params(dataset=traj_dataset, depths=[d], widths=[w], **{**common, "seeds": seeds[:1]})
panels = [(f"d = {d}, w = {w}", sweep.trajectories(traj_cfg(d, w), traj_c).sel(depth=d, width=w))
          for d, w in (wide_shallow, narrow_deep)]
glue("pd-traj-seed", seeds[0], display=False)
fig = phase.transient(panels)
glue("fig-pd-transient", fig, display=False)
onset = {}  # smallest c drawn whose loss rises (rd2(max_t L_t / L_0) > 1, or diverged), per network
for key, (_, ds) in zip(("wide-shallow", "narrow-deep"), panels):
    ds = ds.isel(seed=0)
    rose = ((ds.loss / ds.loss.isel(step=0)).isel(step=slice(1, None)).max("step").round(2) > 1) | ds.diverged.any("step")
    onset[key] = float(ds.c.where(rose).min())
claims.record(CH, "kb-fig2-onset", measured=onset)"""))
cells.append(md(r"""```{glue:figure} fig-pd-transient
:name: fig-pd-transient

Normalised loss $L_t/L_0$ (left) and sharpness $\lambda^H_t/\lambda^H_0$ (right) over the first
steps, one curve per $c = \eta\lambda^H_0$ (colour). Top: wide, shallow network; bottom: narrow,
deep one. Curves that stop diverged ($L > 10^5$).
```

For the wide, shallow network the loss curves leave the dotted line $\tilde L = 1$ upwards for $c$
just above 2, the catapult; the narrow, deep network needs a much larger $c$ before its loss rises,
and in between its sharpness drops by a large factor within a few steps."""))
cells.append(md(r"""## Phase diagram against width

**Claim.** $\langle c_{loss}\rangle \to 2$ as $1/w \to 0$, and $c_{loss}$, $c_{sharp}$ grow with
$1/w$; $c_{sharp}$ stays between $c_{loss}$ and $c_{max}$. The constants are found on the paper's
grid $c = 2^x$, $x$ in steps of 0.1, by the search named in the parameters (a bisection returns the
same grid point as the full grid whenever the indicator is monotone in $c$; this is tested)."""))
cells.append(code("""by_width = sweep.phase_sweep(cfg_width)
fig = phase.phase_diagram(by_width, y="inv_width")
glue("fig-pd-width", fig, display=False)
wmax = by_width.sel(width=max(widths)).squeeze()
closs_widest = float(wmax.c_loss.mean())
glue("pd-closs-widest", f"{closs_widest:.2f}", display=False)
glue("pd-closs-verdict", "close to the quadratic value 2" if closs_widest < 2.5 else
     "still well above the quadratic value 2 (wider networks are needed to approach it)", display=False)
glue("pd-widest", max(widths), display=False)
glue("pd-closs-narrowest", f"{float(by_width.sel(width=min(widths)).c_loss.mean()):.1f}", display=False)
glue("pd-narrowest", min(widths), display=False)
cw = by_width.isel(depth=0)
wl, x_w = [f"w={w}" for w in cw.width.values], 1 / cw.width.values
per_w = lambda da: (dict(zip(wl, da.mean("seed").values)), dict(zip(wl, da.std("seed").values)))
claims.record(CH, "kb-closs-wide", measured=float(cw.c_loss.isel(width=-1).mean()), spread=float(cw.c_loss.isel(width=-1).std()),
              in_regime=width_depth / max(widths) <= 1 / 64,
              regime_note=f"the widest network has d/w = {width_depth / max(widths):.2g} > 1/64 [I]")
claims.record(CH, "kb-closs-width", *per_w(cw.c_loss), x=x_w)
claims.record(CH, "kb-csharp-width", *per_w(cw.c_sharp), x=x_w)
by_width[["c_loss", "c_sharp", "c_max"]].mean("seed").squeeze().to_dataframe().round(2)"""))
cells.append(md(r"""```{glue:figure} fig-pd-width
:name: fig-pd-width

Phase diagram of FCNs on MNIST against $1/w$ at fixed depth: mean critical constants over
initialisations (markers), 25-75 % quantiles (bars), quadratic fits (lines), $c = 2$ (dashed) and
the four phases (shaded). Widths above the parameter `c_sharp_max_width` have no $c_{sharp}$.
The legend says how each constant's line is drawn: a fit where there are enough widths for its order, else the means joined (dotted) or a lone point. An open marker with an arrow is a mean $c_{max}$ that is only a lower bound (some initialisation did not diverge anywhere on the grid), left out of the fit; widths whose $c_{sharp}$ was skipped are named in the legend.
```

At the widest network ($w$ = {glue:text}`pd-widest`) the mean $c_{loss}$ is
{glue:text}`pd-closs-widest`, {glue:text}`pd-closs-verdict`; at $w$ = {glue:text}`pd-narrowest`
it is {glue:text}`pd-closs-narrowest`. The sharpness-reduction phase (blue) opens up as $1/w$ grows."""))
cells.append(md(r"""## Phase diagram against depth

**Claim.** At fixed width, $c_{loss}$ and $c_{sharp}$ grow with depth: the relevant variable is
$d/w$, and networks of different widths fall on one diagram when plotted against it. $c_{max}$
rises with $d$ (MSE)."""))
cells.append(code("""by_depth = sweep.phase_sweep(cfg_depth)
fig = phase.phase_diagram(by_depth, y="depth_over_width")
glue("fig-pd-depth", fig, display=False)
per_d = lambda da: {f"w={w}": da.sel(width=w).mean("seed").values for w in by_depth.width.values}
claims.record(CH, "kb-closs-depth", measured=per_d(by_depth.c_loss), x=by_depth.depth.values)
claims.record(CH, "kb-cmax-depth", measured=per_d(by_depth.c_max.where(~by_depth.c_max_censored)), x=by_depth.depth.values)
by_depth[["c_loss", "c_sharp", "c_max"]].mean("seed").to_dataframe().round(2)"""))
cells.append(md(r"""```{glue:figure} fig-pd-depth
:name: fig-pd-depth

Phase diagram of FCNs on Fashion-MNIST against $d/w$, combining every (depth, width) of the
parameters; markers, bars, fits, bounds and shading as in {numref}`fig-pd-width`.
```

The constants line up against $d/w$: deeper or narrower networks have larger $c_{loss}$ and
$c_{sharp}$, so they need a larger learning rate (in units of $2/\lambda^H_0$) before the loss
catapults."""))
cells.append(md(r"""## The ordering of the constants, per initialisation

**Claim** (Fig. 4). For each initialisation, $c_{loss} \le c_{sharp} \le c_{max}$, with
outliers only at large $d/w$ where the dynamics are noisy."""))
cells.append(code("""cl, cs, cm = (np.concatenate([d[v].values.ravel() for d in (by_width, by_depth)])
              for v in ("c_loss", "c_sharp", "c_max"))
n = int(np.isfinite(cs).sum())
frac = 100 * float(((cl <= cs) & (cs <= cm)).sum()) / n if n else float("nan")
glue("pd-order-n", n, display=False)
glue("pd-order-frac", f"{frac:.0f} %", display=False)
glue("fig-pd-order", phase.ordering([by_width, by_depth]), display=False)
claims.record(CH, "kb-order", measured=frac / 100, ordered=(cl <= cs) & (cs <= cm), valid=np.isfinite(cs))"""))
cells.append(md(r"""```{glue:figure} fig-pd-order
:name: fig-pd-order

Per initialisation: $c_{sharp}$ against $c_{loss}$ (left) and $c_{max}$ against $c_{sharp}$
(right), coloured by $d/w$. Points on or above the dashed diagonal satisfy the ordering.
```

Of the {glue:text}`pd-order-n` initialisations with a measured $c_{sharp}$,
{glue:text}`pd-order-frac` satisfy $c_{loss} \le c_{sharp} \le c_{max}$."""))
cells.append(md(r"""## What this chapter reproduces

Each claim of this chapter with the paper's value, what this run measured (the spread is the standard deviation over initialisations), the rule that decides the verdict (fixed in `earlytrain.claims` before any run) and the verdict at the scale run here. The {doc}`report` collects the verdicts of every chapter.""", id="claims-md"))
cells.append(code("claims.show(CH)", metadata={"tags": ["remove-input"]}, id="claims"))
cells.append(md(r"""## Where these defaults differ from the paper

The defaults are sized for a 2-core CPU (a few minutes); `book/params/01_phase_diagram/paper.yaml`
carries the paper's sizes for a GPU.

- **Sizes.** Widths 32-1024 at depth 4 (paper: 256-2048 at depth 8), three initialisations
  (paper: ten), an SGD pool of 4096 examples (paper: the full training set) and 512 measurement
  examples (paper: 4096). Fewer initialisations make the quantile bars and the fits noisier;
  smaller widths put the networks at larger $d/w$, where the effects are larger, so the trends are
  easier to see, not harder.
- **Loss measurement.** $L_t$ is measured on the fixed measurement subset, not the full training
  set; the ratio $L_t / L_0$ is compared after rounding to two decimals as in the paper (App. C).
- **Sharpness.** Lanczos with 20 Hessian-vector products instead of 20 power iterations, measured on
  a fixed subset instead of the next training batch (the paper's code consumes that batch). Power
  iteration at this budget can be off by several percent when the spectral gap is small, which is
  larger than the 0.5 % the rounding rule resolves.
- **Search.** A bisection on the paper's grid instead of the full grid; both return the same grid
  point where the indicators are monotone in $c$ (`search = "grid"` restores the paper's procedure).
- **c_sharp at the widest network** is skipped by default (`c_sharp_max_width`), because it is the
  most expensive measurement; set it to `None` to include it.
- **Not known from the paper** and chosen here [I]: the fixed widths of the depth diagram, and the
  25-75 % quantiles of the bars."""))
for i, cell in enumerate(c for c in cells if c.get("id") not in ("claims-md", "claims")):
    cell["id"] = f"pd-{i:02d}"  # stable ids: regenerating the notebook changes nothing else
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
nbf.write(nb, "book/01_phase_diagram.ipynb")
