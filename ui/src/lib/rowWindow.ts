// Which rows of a long table to render (issue 14: 200 rows stay responsive, and the
// console's web process stays small). Each rendered row costs the web process about
// 0.2 MiB and every sort re-renders them all, so the fleet table renders only the rows in
// view plus a margin, with one spacer above and one below standing in for the rest.
// Pure: the view measures and scrolls, this only does the arithmetic.

/** The slice `[start, end)` of the rows to render, and the heights the spacers stand in for. */
export interface RowWindow {
  start: number;
  end: number;
  /** Sum of the heights of the rows before `start`, in px. */
  before: number;
  /** Sum of the heights of the rows from `end` on, in px. */
  after: number;
}

/**
 * The rows that overlap the view `[viewTop, viewBottom)`, plus `overscan` rows either
 * side. `heights` are the rows' heights in px (measured, or an estimate for rows never
 * rendered); the view is in the same coordinates, 0 being the top of the first row, so it
 * may start above the list (negative) or end below it. A view that misses the list still
 * renders the `overscan` rows nearest to it, so the first paint has rows to show before
 * anything is measured.
 */
export function rowWindow(heights: readonly number[], viewTop: number, viewBottom: number, overscan: number): RowWindow {
  const n = heights.length;
  let first = n; // the first row whose bottom is below the view's top
  let last = n; // the first row whose top is at or below the view's bottom
  let top = 0;
  for (let i = 0; i < n; i++) {
    const bottom = top + heights[i];
    if (first === n && bottom > viewTop) first = i;
    if (top >= viewBottom) {
      last = i;
      break;
    }
    top = bottom;
  }
  if (first > last) first = last; // the view is below the list: the last rows
  const start = Math.max(0, Math.min(first, n - 1) - overscan);
  const end = Math.min(n, Math.max(last, first + 1) + overscan);
  let before = 0;
  let after = 0;
  for (let i = 0; i < start; i++) before += heights[i];
  for (let i = end; i < n; i++) after += heights[i];
  return { start, end: Math.max(start, end), before, after };
}
