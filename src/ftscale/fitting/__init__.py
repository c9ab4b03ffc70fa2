"""Fitting scaling laws of finetuning, in these modules (and rectified, selection) (import the one that holds a name):

- `ftscale.fitting.laws`: the laws as formulas (LAWS, Group, predict, parameter names, the design
  array, input checks, FitError) and where two fitted laws cross (crossings, critical_closed_form);
- `ftscale.fitting.solver`: the multi-start Huber fitter (fit, fit_joint, Fit, grid_starts, huber,
  OBJECTIVES, DEFAULT_INIT_GRID), whose last stage, a semismooth Newton polish to a stationary
  point, is `ftscale.fitting.newton`;
- `ftscale.fitting.statistics`: Delta_e / Delta_h (mean_absolute_deviation), pearson and the
  bootstrap (resample_condition_means, case_resample_weights, percentile_interval);
- `ftscale.fitting.diagnostics`: whether a fit converged, has a parameter at a bound, or is degenerate.

This package re-exports nothing, so each name has one home.
"""
