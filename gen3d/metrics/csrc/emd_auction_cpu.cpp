// Earth Mover's Distance between equal-size point clouds by the forward auction algorithm with
// epsilon scaling (D. P. Bertsekas, "The auction algorithm: a distributed relaxation method for the
// assignment problem", 1988; "Auction algorithms for network flow problems", 1992).
//
// Persons are the points of x, objects the points of y, and person i values object j at -c(i, j) - p(j)
// with c the Euclidean distance and p the object prices. An unassigned person bids for its best object,
// raising the price by the gap to its second-best value plus epsilon. When every person holds an object,
// the matching satisfies epsilon-complementary slackness, so its total cost exceeds the optimum by at most
// N * epsilon: its mean cost by at most epsilon. Epsilon starts large and shrinks geometrically (prices are
// kept between phases), which avoids the long price wars a small epsilon alone would cause.
//
// The final epsilon is rel_eps times a lower bound of the optimal mean cost (the larger of the two mean
// nearest-neighbour distances: every point must travel at least to its nearest neighbour), so the
// relative excess over the optimum is at most rel_eps. The result is the exact cost of a valid bijection,
// hence never below the optimum.
//
// A bid needs the best and second-best of c(i, j) + p(j) over all objects. The objects are bucketed in a
// uniform grid; each non-empty cell keeps its points' bounding box and a lower bound of their prices
// (prices only rise, so a bound stays valid until the cell is visited again and the bound is refreshed).
// Distance-to-box + price bound is a lower bound of every value in the cell, so a bid first visits the
// cell that held the person's previous best object, then, in increasing order of that bound, only the
// cells whose bound is below the running second-best value: a few cells instead of all N objects. The
// cell test runs on squared distances in one vectorised pass. OpenMP runs one batch item per thread.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "metrics.h"
#include "simd.h"

namespace gen3d_metrics {
namespace {

constexpr double kPointsPerCell = 48.0;  // grid resolution: about N / kPointsPerCell non-empty cells
constexpr double kShrink = 6.0;         // epsilon shrink factor between phases
constexpr double kStartFrac = 0.25;     // first epsilon as a fraction of the largest cost

// Square root by Newton's iteration on the reciprocal root, in plain arithmetic so that loops using it
// vectorise (std::sqrt does not: the build keeps -fmath-errno). Relative error <= 2e-7 (float) and
// <= 5e-16 (double) over the range of squared distances; Root(0) == 0.
GEN3D_INLINE float Root(float s) {
  int32_t bits;
  std::memcpy(&bits, &s, sizeof(bits));
  bits = 0x5f375a86 - (bits >> 1);
  float r;
  std::memcpy(&r, &bits, sizeof(r));
  const float h = 0.5f * s;
  r = r * (1.5f - h * r * r);
  r = r * (1.5f - h * r * r);
  r = r * (1.5f - h * r * r);
  return s * r;
}

GEN3D_INLINE double Root(double s) {
  int64_t bits;
  std::memcpy(&bits, &s, sizeof(bits));
  bits = 0x5fe6eb50c7b537a9LL - (bits >> 1);
  double r;
  std::memcpy(&r, &bits, sizeof(r));
  const double h = 0.5 * s;
  r = r * (1.5 - h * r * r);
  r = r * (1.5 - h * r * r);
  r = r * (1.5 - h * r * r);
  r = r * (1.5 - h * r * r);
  return s * r;
}

// Shrinks a distance to a cell's box so that it stays below the Root()-computed costs of the cell's
// points despite Root's rounding.
template <typename T>
constexpr T RootSlack() {
  return sizeof(T) == 4 ? T(1) - T(1e-6) : T(1) - T(1e-13);
}

template <typename T>
struct AuctionState {
  // Objects (points of y) sorted by grid cell, structure of arrays.
  std::vector<T> y0, y1, y2;    // (N,) sorted coordinates
  std::vector<int32_t> order;   // (N,) sorted position -> original index
  std::vector<int32_t> start;   // (C + 1,) first sorted position of each non-empty cell
  std::vector<T> lo0, lo1, lo2;  // (C,) bounding box of each cell's points
  std::vector<T> hi0, hi1, hi2;
  std::vector<T> price_min;     // (C,) lower bound of the prices in each cell
  std::vector<T> cell_dist2;    // (C,) scratch: squared distance of one person to each cell's box
  std::vector<T> cell_reach;    // (C,) scratch: squared reach (w2 - price bound)^2 of one person per cell
  std::vector<T> todo_bound;    // (C,) scratch: lower bound of the person's values in the cells to visit
  std::vector<int32_t> cell_id;  // (N,) non-empty cell of each sorted object
  std::vector<int32_t> hint;    // (N,) cell each person visits first
  std::vector<int32_t> todo;    // scratch: cells a bid still has to visit
  std::vector<T> cell_cost;     // scratch: costs of one person to one cell's objects
  std::vector<T> cell_value;    // scratch: cost + price
  int64_t cells = 0;
  // Auction.
  std::vector<T> price;         // (N,) price of each sorted object
  std::vector<int32_t> owner;   // (N,) person holding sorted object j, or -1
  std::vector<int32_t> held;    // (N,) sorted object held by person i, or -1
  std::vector<int32_t> queue;   // unassigned persons (a stack)
};

// Mean nearest-neighbour distance both ways (lower bounds of the optimal mean cost) and the largest cost.
template <typename T>
GEN3D_INLINE void CostBounds(const T* __restrict xs, const T* __restrict ys, int64_t n, double* lb_row,
                             double* lb_col, double* cmax) {
  const T *x0 = xs, *x1 = xs + n, *x2 = xs + 2 * n;
  const T *y0 = ys, *y1 = ys + n, *y2 = ys + 2 * n;
  std::vector<T> col_min(static_cast<size_t>(n), Inf<T>());
  T* __restrict cm = col_min.data();
  double row_sum = 0.0;
  T big = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T a0 = x0[i], a1 = x1[i], a2 = x2[i];
    T best = Inf<T>();
#pragma omp simd reduction(min : best) reduction(max : big)
    for (int64_t j = 0; j < n; ++j) {
      const T d0 = a0 - y0[j], d1 = a1 - y1[j], d2 = a2 - y2[j];
      const T d = d0 * d0 + d1 * d1 + d2 * d2;  // squared: the root is taken after the minimum
      best = d < best ? d : best;
      big = d > big ? d : big;
      cm[j] = d < cm[j] ? d : cm[j];
    }
    row_sum += std::sqrt(static_cast<double>(best));
  }
  double col_sum = 0.0;
  for (int64_t j = 0; j < n; ++j) col_sum += std::sqrt(static_cast<double>(cm[j]));
  *lb_row = row_sum / static_cast<double>(n);
  *lb_col = col_sum / static_cast<double>(n);
  *cmax = std::sqrt(static_cast<double>(big));
}

// Cell ids of all objects for cubic cells of side h anchored at lo (row-major over the cell counts dims).
template <typename T>
GEN3D_INLINE void CellIds(const T* const y[3], int64_t n, const double lo[3], const int64_t dims[3], double h,
                          int64_t* ids) {
  for (int64_t j = 0; j < n; ++j) {
    int64_t id = 0;
    for (int a = 0; a < 3; ++a) {
      int64_t k = static_cast<int64_t>((static_cast<double>(y[a][j]) - lo[a]) / h);
      k = std::min(std::max<int64_t>(k, 0), dims[a] - 1);
      id = id * dims[a] + k;
    }
    ids[j] = id;
  }
}

// Buckets the objects into a uniform grid of cubic cells. The cell side is chosen so that about
// N / kPointsPerCell cells are non-empty: starting from the side that would fill the bounding box, it
// shrinks while too few cells are occupied (surfaces and flat shapes leave most of the box empty).
template <typename T>
GEN3D_INLINE void BuildGrid(const T* ys, int64_t n, AuctionState<T>& s) {
  const T* y[3] = {ys, ys + n, ys + 2 * n};
  double lo[3], extent[3];
  for (int a = 0; a < 3; ++a) {
    lo[a] = static_cast<double>(*std::min_element(y[a], y[a] + n));
    extent[a] = static_cast<double>(*std::max_element(y[a], y[a] + n)) - lo[a];
  }
  const double largest_extent = std::max({extent[0], extent[1], extent[2]});
  const double target = std::max(1.0, static_cast<double>(n) / kPointsPerCell);
  double h = largest_extent > 0 ? largest_extent / std::max(1.0, std::floor(std::cbrt(target))) : 1.0;
  int64_t dims[3];
  std::vector<int64_t> ids(static_cast<size_t>(n)), sorted(static_cast<size_t>(n));
  for (int attempt = 0;; ++attempt) {
    for (int a = 0; a < 3; ++a) dims[a] = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(extent[a] / h)));
    CellIds(y, n, lo, dims, h, ids.data());
    sorted = ids;
    std::sort(sorted.begin(), sorted.end());
    const double occupied = static_cast<double>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
    if (occupied >= target / 1.5 || attempt == 8 || largest_extent <= 0) break;
    h *= std::max(0.25, std::min(0.9, std::sqrt(occupied / target)));  // occupancy grows like 1 / h^2 on surfaces
  }
  // Sort the objects by cell (stable, so equal cells keep the input order).
  s.order.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) s.order[j] = static_cast<int32_t>(j);
  std::stable_sort(s.order.begin(), s.order.end(), [&ids](int32_t a, int32_t b) { return ids[a] < ids[b]; });
  s.y0.resize(static_cast<size_t>(n));
  s.y1.resize(static_cast<size_t>(n));
  s.y2.resize(static_cast<size_t>(n));
  s.start.clear();
  for (int64_t k = 0; k < n; ++k) {
    const int32_t j = s.order[k];
    s.y0[k] = y[0][j];
    s.y1[k] = y[1][j];
    s.y2[k] = y[2][j];
    if (k == 0 || ids[j] != ids[s.order[k - 1]]) s.start.push_back(static_cast<int32_t>(k));
  }
  // The tight bounding box of each non-empty cell's points.
  s.lo0.clear(), s.lo1.clear(), s.lo2.clear(), s.hi0.clear(), s.hi1.clear(), s.hi2.clear();
  s.start.push_back(static_cast<int32_t>(n));
  for (size_t c = 0; c + 1 < s.start.size(); ++c) {
    const int32_t b = s.start[c], e = s.start[c + 1];
    s.lo0.push_back(*std::min_element(&s.y0[b], &s.y0[b] + (e - b)));
    s.lo1.push_back(*std::min_element(&s.y1[b], &s.y1[b] + (e - b)));
    s.lo2.push_back(*std::min_element(&s.y2[b], &s.y2[b] + (e - b)));
    s.hi0.push_back(*std::max_element(&s.y0[b], &s.y0[b] + (e - b)));
    s.hi1.push_back(*std::max_element(&s.y1[b], &s.y1[b] + (e - b)));
    s.hi2.push_back(*std::max_element(&s.y2[b], &s.y2[b] + (e - b)));
  }
  s.start.pop_back();
  s.cells = static_cast<int64_t>(s.start.size());
  s.start.push_back(static_cast<int32_t>(n));
  s.price_min.assign(static_cast<size_t>(s.cells), T(0));
  s.cell_dist2.resize(static_cast<size_t>(s.cells));
  s.todo.resize(static_cast<size_t>(s.cells));
  s.cell_reach.resize(static_cast<size_t>(s.cells));
  s.todo_bound.resize(static_cast<size_t>(s.cells));
  s.cell_id.resize(static_cast<size_t>(n));
  for (int64_t c = 0; c < s.cells; ++c) {
    std::fill(s.cell_id.begin() + s.start[c], s.cell_id.begin() + s.start[c + 1], static_cast<int32_t>(c));
  }
  s.hint.assign(static_cast<size_t>(n), -1);
  int32_t largest = 0;
  for (int64_t c = 0; c < s.cells; ++c) largest = std::max(largest, s.start[c + 1] - s.start[c]);
  s.cell_cost.resize(static_cast<size_t>(largest));
  s.cell_value.resize(static_cast<size_t>(largest));
}

// Best and second-best value of person (a0, a1, a2) over one cell; refreshes the cell's price bound.
// The values are computed in one vectorised pass; the running top two are only updated (scalar) when
// the cell's minimum beats the current second-best.
template <typename T>
GEN3D_INLINE void VisitCell(AuctionState<T>& s, int64_t c, T a0, T a1, T a2, T& w1, T& w2, int32_t& j1, T& c1) {
  const int32_t b = s.start[c], e = s.start[c + 1];
  const T* __restrict price = s.price.data() + b;
  const T* __restrict y0 = s.y0.data() + b;
  const T* __restrict y1 = s.y1.data() + b;
  const T* __restrict y2 = s.y2.data() + b;
  T* __restrict cost = s.cell_cost.data();
  T* __restrict value = s.cell_value.data();
  const int32_t len = e - b;
  T pmin = Inf<T>(), vmin = Inf<T>();
#pragma omp simd reduction(min : pmin, vmin)
  for (int32_t k = 0; k < len; ++k) {
    const T p = price[k];
    const T d0 = a0 - y0[k], d1 = a1 - y1[k], d2 = a2 - y2[k];
    const T ck = Root(d0 * d0 + d1 * d1 + d2 * d2);
    const T w = ck + p;
    cost[k] = ck;
    value[k] = w;
    pmin = p < pmin ? p : pmin;
    vmin = w < vmin ? w : vmin;
  }
  s.price_min[c] = pmin;
  if (!(vmin < w2)) return;
  for (int32_t k = 0; k < len; ++k) {
    const T w = value[k];
    if (w < w2) {
      if (w < w1) {
        w2 = w1;
        w1 = w;
        j1 = b + k;
        c1 = cost[k];
      } else {
        w2 = w;
      }
    }
  }
}

// Cell bounding boxes as raw pointers, so that loops over cells vectorise (no aliasing with outputs).
template <typename T>
struct Boxes {
  const T *__restrict lo0, *__restrict lo1, *__restrict lo2, *__restrict hi0, *__restrict hi1, *__restrict hi2;

  // Squared distance from (a0, a1, a2) to the box of cell c. Written without comparisons (GCC does not
  // if-convert the selects here): lo <= hi, so at most one of lo - a and a - hi is positive, and the
  // distance along an axis is relu(lo - a) + relu(a - hi), with relu(v) = (v + |v|) / 2 exact.
  GEN3D_INLINE T Distance2(int64_t c, T a0, T a1, T a2) const {
    const T u0 = lo0[c] - a0, u1 = lo1[c] - a1, u2 = lo2[c] - a2;
    const T v0 = a0 - hi0[c], v1 = a1 - hi1[c], v2 = a2 - hi2[c];
    const T e0 = T(0.5) * ((u0 + std::fabs(u0)) + (v0 + std::fabs(v0)));
    const T e1 = T(0.5) * ((u1 + std::fabs(u1)) + (v1 + std::fabs(v1)));
    const T e2 = T(0.5) * ((u2 + std::fabs(u2)) + (v2 + std::fabs(v2)));
    return e0 * e0 + e1 * e1 + e2 * e2;
  }
};

// One bid of person (a0, a1, a2): the best object j1 (sorted position), its cost c1 and the best and
// second-best values w1 <= w2. `hint` is the cell to visit first (the cell of the person's previous best
// object; -1 picks the nearest cell) and is updated to the cell of j1.
template <typename T>
GEN3D_INLINE void FindBid(AuctionState<T>& s, T a0, T a1, T a2, int32_t& hint, int32_t& j1, T& c1, T& w1, T& w2) {
  const int64_t cells = s.cells;
  const T* __restrict pmin = s.price_min.data();
  T* __restrict dist2 = s.cell_dist2.data();
  T* __restrict reach2 = s.cell_reach.data();
  const Boxes<T> box{s.lo0.data(), s.lo1.data(), s.lo2.data(), s.hi0.data(), s.hi1.data(), s.hi2.data()};
  if (hint < 0) {
    T lowest = Inf<T>();
#pragma omp simd reduction(min : lowest)
    for (int64_t c = 0; c < cells; ++c) {
      const T d = box.Distance2(c, a0, a1, a2);
      dist2[c] = d;
      lowest = d < lowest ? d : lowest;
    }
    hint = 0;
    while (hint < cells - 1 && dist2[hint] != lowest) ++hint;
  }
  w1 = Inf<T>();
  w2 = Inf<T>();
  j1 = -1;
  c1 = 0;
  VisitCell(s, hint, a0, a1, a2, w1, w2, j1, c1);
  // Cells that may still hold a value below w2: distance < w2 - (price bound), tested on squares (no
  // root), with a small margin so rounding never drops a cell.
  const T margin = sizeof(T) == 4 ? T(1.00001) : T(1.0000000001);
  const T limit = w2;
#pragma omp simd
  for (int64_t c = 0; c < cells; ++c) {
    const T r = limit - pmin[c];
    const T rp = T(0.5) * (r + std::fabs(r));  // relu: a non-positive r admits nothing
    dist2[c] = box.Distance2(c, a0, a1, a2);
    reach2[c] = rp * rp * margin;
  }
  reach2[hint] = 0;  // already visited
  int32_t* __restrict todo = s.todo.data();
  T* __restrict bound = s.todo_bound.data();
  int64_t k = 0;
  for (int64_t c = 0; c < cells; ++c) {  // branch-free compaction
    todo[k] = static_cast<int32_t>(c);
    k += dist2[c] < reach2[c];
  }
  for (int64_t t = 0; t < k; ++t) bound[todo[t]] = std::sqrt(dist2[todo[t]]) * RootSlack<T>() + pmin[todo[t]];
  // Visit in increasing order of the bound, so that w2 tightens early and prunes the rest.
  std::sort(todo, todo + k, [bound](int32_t a, int32_t b) { return bound[a] < bound[b]; });
  for (int64_t t = 0; t < k && bound[todo[t]] < w2; ++t) VisitCell(s, todo[t], a0, a1, a2, w1, w2, j1, c1);
  hint = s.cell_id[j1];
}

// One scaling phase: all persons start unassigned and bid until each holds an object.
template <typename T>
GEN3D_INLINE void AuctionPhase(const T* xs, int64_t n, T eps, AuctionState<T>& s) {
  const T *x0 = xs, *x1 = xs + n, *x2 = xs + 2 * n;
  T* price = s.price.data();
  std::fill(s.owner.begin(), s.owner.end(), -1);
  std::fill(s.held.begin(), s.held.end(), -1);
  s.queue.clear();
  for (int64_t i = n - 1; i >= 0; --i) s.queue.push_back(static_cast<int32_t>(i));
  while (!s.queue.empty()) {
    const int32_t i = s.queue.back();
    s.queue.pop_back();
    int32_t j1;
    T c1, w1, w2;
    FindBid(s, x0[i], x1[i], x2[i], s.hint[i], j1, c1, w1, w2);
    // New price: person i's value for j1 drops to its second-best value minus eps.
    price[j1] = (w2 < Inf<T>() ? w2 : w1) - c1 + eps;
    const int32_t prev = s.owner[j1];
    s.owner[j1] = i;
    s.held[i] = j1;
    if (prev >= 0) {
      s.held[prev] = -1;
      s.queue.push_back(prev);
    }
  }
}

// Mean Euclidean cost (float64) of the current matching, which is written to `assignment`.
template <typename T>
GEN3D_INLINE double MatchingCost(const T* xs, const T* ys, int64_t n, const AuctionState<T>& s, int64_t* assignment) {
  double total = 0.0;
  const T *x0 = xs, *x1 = xs + n, *x2 = xs + 2 * n;
  const T *y0 = ys, *y1 = ys + n, *y2 = ys + 2 * n;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = s.order[static_cast<size_t>(s.held[static_cast<size_t>(i)])];
    assignment[i] = j;
    const double d0 = static_cast<double>(x0[i]) - static_cast<double>(y0[j]);
    const double d1 = static_cast<double>(x1[i]) - static_cast<double>(y1[j]);
    const double d2 = static_cast<double>(x2[i]) - static_cast<double>(y2[j]);
    total += std::sqrt(d0 * d0 + d1 * d1 + d2 * d2);
  }
  return total / static_cast<double>(n);
}

// The auction on one pair. Returns the mean cost of the final matching and sets *lower to a lower bound of the
// optimal mean cost. When a scaling phase ends with a lower bound above stop_above, the pair is given up: the
// result is NaN and *lower that bound. (At the end of a phase with epsilon eps every person is within eps of its
// best object, so the matching's mean cost exceeds the optimum by at most eps.)
template <typename T>
GEN3D_INLINE double AuctionOne(const T* xs, const T* ys, int64_t n, double rel_eps, double stop_above,
                               AuctionState<T>& s, int64_t* assignment, double* lower) {
  double lb_row = 0, lb_col = 0, cmax = 0;
  CostBounds(xs, ys, n, &lb_row, &lb_col, &cmax);
  if (cmax <= 0.0) {  // every point coincides: any bijection costs 0
    for (int64_t i = 0; i < n; ++i) assignment[i] = i;
    *lower = 0.0;
    return 0.0;
  }
  BuildGrid(ys, n, s);
  s.price.assign(static_cast<size_t>(n), T(0));
  s.owner.resize(static_cast<size_t>(n));
  s.held.resize(static_cast<size_t>(n));
  // Epsilon may not shrink below what T resolves next to the prices (at most a few times cmax).
  const double floor = cmax * (sizeof(T) == 4 ? 4e-6 : 1e-12);
  const double eps_final = std::max(rel_eps * std::max(lb_row, lb_col), floor);
  // Rounding of the costs (Root) and prices in T can break the epsilon bound by a few ulps of the prices.
  const double slack = cmax * (sizeof(T) == 4 ? 1e-5 : 1e-12);
  double eps = std::max(cmax * kStartFrac, eps_final);
  while (true) {
    AuctionPhase(xs, n, static_cast<T>(eps), s);
    if (eps <= eps_final) break;
    if (stop_above < std::numeric_limits<double>::infinity()) {
      const double bound = MatchingCost(xs, ys, n, s, assignment) - eps - slack;
      if (bound > stop_above) {
        *lower = bound;
        return std::numeric_limits<double>::quiet_NaN();
      }
    }
    eps = std::max(eps / kShrink, eps_final);
  }
  const double cost = MatchingCost(xs, ys, n, s, assignment);
  *lower = std::max(0.0, cost - eps - slack);
  return cost;
}

GEN3D_MULTIVERSION double AuctionOneF(const float* xs, const float* ys, int64_t n, double rel_eps, double stop_above,
                                      AuctionState<float>& s, int64_t* assignment, double* lower) {
  return AuctionOne<float>(xs, ys, n, rel_eps, stop_above, s, assignment, lower);
}

GEN3D_MULTIVERSION double AuctionOneD(const double* xs, const double* ys, int64_t n, double rel_eps,
                                      double stop_above, AuctionState<double>& s, int64_t* assignment,
                                      double* lower) {
  return AuctionOne<double>(xs, ys, n, rel_eps, stop_above, s, assignment, lower);
}

inline double Auction(const float* xs, const float* ys, int64_t n, double rel_eps, double stop_above,
                      AuctionState<float>& s, int64_t* assignment, double* lower) {
  return AuctionOneF(xs, ys, n, rel_eps, stop_above, s, assignment, lower);
}

inline double Auction(const double* xs, const double* ys, int64_t n, double rel_eps, double stop_above,
                      AuctionState<double>& s, int64_t* assignment, double* lower) {
  return AuctionOneD(xs, ys, n, rel_eps, stop_above, s, assignment, lower);
}

template <typename T>
void EmdAuctionImpl(const at::Tensor& xs, const at::Tensor& ys, double rel_eps, const at::Tensor& stop_above,
                    at::Tensor& cost, at::Tensor& assignment, at::Tensor& lower) {
  const int64_t batch = xs.size(0), n = xs.size(2);
  const T* xp = xs.data_ptr<T>();
  const T* yp = ys.data_ptr<T>();
  const double* stop_ptr = stop_above.data_ptr<double>();
  double* cost_ptr = cost.data_ptr<double>();
  double* lower_ptr = lower.data_ptr<double>();
  int64_t* assign_ptr = assignment.data_ptr<int64_t>();
#pragma omp parallel
  {
    AuctionState<T> state;  // buffers reused across this thread's batch items
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) {
      cost_ptr[b] = Auction(xp + b * 3 * n, yp + b * 3 * n, n, rel_eps, stop_ptr[b], state, assign_ptr + b * n,
                            lower_ptr + b);
    }
  }
}

}  // namespace
}  // namespace gen3d_metrics

std::vector<at::Tensor> EmdAuctionCpu(const at::Tensor& x, const at::Tensor& y, double rel_eps,
                                      const at::Tensor& stop_above) {
  TORCH_CHECK(x.device().is_cpu() && y.device().is_cpu(), "emd_auction: expected CPU tensors");
  TORCH_CHECK(x.dim() == 3 && x.size(2) == 3, "emd_auction: x must have shape (B, N, 3)");
  TORCH_CHECK(y.dim() == 3 && y.size(2) == 3, "emd_auction: y must have shape (B, N, 3)");
  TORCH_CHECK(x.size(0) == y.size(0) && x.size(1) == y.size(1), "emd_auction: x and y must have equal shapes");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "emd_auction: x and y must have the same dtype");
  TORCH_CHECK(x.size(1) > 0, "emd_auction: clouds must not be empty");
  TORCH_CHECK(x.size(1) < (int64_t{1} << 31), "emd_auction: at most 2^31 - 1 points per cloud");
  TORCH_CHECK(rel_eps > 0.0, "emd_auction: rel_eps must be positive");
  TORCH_CHECK(stop_above.device().is_cpu() && stop_above.scalar_type() == at::kDouble && stop_above.dim() == 1 &&
                  stop_above.size(0) == x.size(0),
              "emd_auction: stop_above must be a (B,) float64 CPU tensor");
  const auto xs = x.transpose(1, 2).contiguous();  // (B, 3, N)
  const auto ys = y.transpose(1, 2).contiguous();  // (B, 3, N)
  const int64_t batch = x.size(0), n = x.size(1);
  auto cost = at::empty({batch}, x.options().dtype(at::kDouble));
  auto assignment = at::empty({batch, n}, x.options().dtype(at::kLong));
  auto lower = at::empty({batch}, x.options().dtype(at::kDouble));
  const auto stop = stop_above.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "EmdAuctionCpu", [&] {
    gen3d_metrics::EmdAuctionImpl<scalar_t>(xs, ys, rel_eps, stop, cost, assignment, lower);
  });
  return {cost, assignment, lower};
}
