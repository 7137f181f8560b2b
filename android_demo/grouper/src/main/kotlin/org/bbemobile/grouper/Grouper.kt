package org.bbemobile.grouper

import java.nio.FloatBuffer

/**
 * Grouper output (docs/grouper.md, "Output").
 *
 * @property height rows of the label map (H).
 * @property width columns of the label map (W).
 * @property labels `H*W` row-major labels: 0 = background, `k` = the k-th instance (1..[count]).
 * @property boxes `count*4` floats: instance `k` (0-based) is `x1, y1, x2, y2` at `4k..4k+3`, input pixels.
 * @property scores `count` mean probabilities of each instance's cells.
 */
class Instances(
    val height: Int,
    val width: Int,
    val labels: IntArray,
    val boxes: FloatArray,
    val scores: FloatArray
) {
    /** Number of instances M (<= max_instances). */
    val count: Int get() = scores.size

    /** Box of 0-based instance [k] (label `k + 1`) as a new `[x1, y1, x2, y2]` array. */
    fun box(k: Int): FloatArray = boxes.copyOfRange(4 * k, 4 * k + 4)

    override fun toString(): String = "Instances(${height}x$width, count=$count)"
}

/**
 * The BBE instance grouper of the paper's section 3.3, exactly as docs/grouper.md specifies: float64
 * arithmetic on exactly widened float32 inputs, non-strict thresholds, stable NMS order, ties to the earlier
 * kept box, dropped instances renumbered; in [GrouperMode.REFINE] the refinement rounds of step 4b (median or
 * mean boxes, NMS by cell count, reassignment).
 *
 * A `Grouper` owns preallocated work arrays that grow to the largest map seen, so repeated calls on the same
 * map size allocate only their results. It is therefore **not thread-safe**: use one instance per thread.
 *
 * @param config thresholds and anchor (validated on construction of [GrouperConfig]).
 */
class Grouper(val config: GrouperConfig = GrouperConfig()) {
    private var probCopy = FloatArray(0)
    private var offsetsCopy = FloatArray(0)
    private var peakKeys = LongArray(0)
    private var keptX1 = DoubleArray(0)
    private var keptY1 = DoubleArray(0)
    private var keptX2 = DoubleArray(0)
    private var keptY2 = DoubleArray(0)
    private var keptArea = DoubleArray(0)
    private var sums = DoubleArray(0)
    private var counts = IntArray(0)
    private var renumber = IntArray(0)
    private var personIndex = IntArray(0)   // flat index of each person cell
    private var personLabel = IntArray(0)   // label (0 = none, k = kept box k) of each person cell
    private var personBox = DoubleArray(0)  // 5 per person cell: x1, y1, x2, y2, area
    private var values = DoubleArray(0)     // 4 x cells: x1, y1, x2, y2 of the cells grouped by label (refinement)
    private var refined = DoubleArray(0)    // 5 per refined box
    private var boxSums = DoubleArray(0)    // 4 per label 0..k: coordinate sums of the cells (mean refinement)
    private var refinedCount = IntArray(0)
    private var refinedOrder = IntArray(0)
    private var groupStart = IntArray(0)
    private var refinedInto = IntArray(0)   // previous label -> label of its refined box (0: none)
    private var settle = DoubleArray(0)     // per box: an IoU above this makes it the argmax (reassignment)

    /**
     * Groups a probability map and box offsets into person instances.
     *
     * @param prob `H*W` probabilities, row-major.
     * @param offsets `H*W*4` offsets `(dx, dy, dw, dh)`, row-major, channel last.
     * @param height H (>= 0).
     * @param width W (>= 0).
     * @param stride input pixels per cell (finite, > 0).
     * @param labelsOut optional array of at least `H*W` ints to write the labels into (reused as
     *   [Instances.labels]; its first `H*W` entries are overwritten); a new array when `null`.
     * @throws IllegalArgumentException on mismatched sizes, NaN/inf in `prob` or `offsets`, or a bad stride.
     */
    @JvmOverloads
    fun group(
        prob: FloatArray,
        offsets: FloatArray,
        height: Int,
        width: Int,
        stride: Double,
        labelsOut: IntArray? = null
    ): Instances {
        val n = checkShape(prob.size.toLong(), offsets.size.toLong(), height, width, "")
        checkFinite(prob, n, "prob")
        checkFinite(offsets, 4 * n, "offsets")
        checkStride(stride)
        return run(prob, offsets, height, width, stride, labels(labelsOut, n))
    }

    /**
     * Same as the `FloatArray` overload on buffers (e.g. the direct output buffers of LiteRT), read from
     * their current position to their limit with absolute reads; positions are not changed. The buffers'
     * own byte order is honoured (a `ByteBuffer.asFloatBuffer()` view uses its `ByteBuffer`'s order).
     */
    @JvmOverloads
    fun group(
        prob: FloatBuffer,
        offsets: FloatBuffer,
        height: Int,
        width: Int,
        stride: Double,
        labelsOut: IntArray? = null
    ): Instances {
        val n = checkShape(prob.remaining().toLong(), offsets.remaining().toLong(), height, width, " remaining")
        if (probCopy.size < n) probCopy = FloatArray(n)
        if (offsetsCopy.size < 4 * n) offsetsCopy = FloatArray(4 * n)
        prob.duplicate().get(probCopy, 0, n)
        offsets.duplicate().get(offsetsCopy, 0, 4 * n)
        checkFinite(probCopy, n, "prob")
        checkFinite(offsetsCopy, 4 * n, "offsets")
        checkStride(stride)
        return run(probCopy, offsetsCopy, height, width, stride, labels(labelsOut, n))
    }

    private fun checkShape(probSize: Long, offsetsSize: Long, height: Int, width: Int, what: String): Int {
        require(height >= 0 && width >= 0) { "height and width must be >= 0, got ${height}x$width" }
        val n = height.toLong() * width.toLong()
        require(4 * n <= Int.MAX_VALUE) { "map ${height}x$width is too large" }
        require(probSize == n) { "prob has $probSize$what values, expected H*W = ${height}*$width = $n" }
        require(offsetsSize == 4 * n) {
            "offsets has $offsetsSize$what values, expected H*W*4 = ${height}*$width*4 = ${4 * n}"
        }
        return n.toInt()
    }

    private fun checkFinite(a: FloatArray, n: Int, name: String) {
        // Branch-free scan: a float is NaN or +-inf iff its exponent bits are all ones.
        var maxExponent = 0
        for (i in 0 until n) {
            val e = java.lang.Float.floatToRawIntBits(a[i]) and 0x7F800000
            if (e > maxExponent) maxExponent = e
        }
        if (maxExponent != 0x7F800000) return
        for (i in 0 until n) {
            val v = a[i]
            if (v.isNaN() || v.isInfinite()) {
                throw IllegalArgumentException("$name contains NaN or inf (value $v at flat index $i)")
            }
        }
    }

    private fun checkStride(stride: Double) {
        require(!stride.isNaN() && !stride.isInfinite() && stride > 0.0) { "stride must be finite and > 0, got $stride" }
    }

    private fun labels(out: IntArray?, n: Int): IntArray {
        if (out == null) return IntArray(n)
        require(out.size >= n) { "labelsOut has ${out.size} entries, needs at least $n" }
        java.util.Arrays.fill(out, 0, n, 0)
        return out
    }

    private fun ensureKept(k: Int) {
        if (keptX1.size >= k) return
        keptX1 = DoubleArray(k)
        keptY1 = DoubleArray(k)
        keptX2 = DoubleArray(k)
        keptY2 = DoubleArray(k)
        keptArea = DoubleArray(k)
        sums = DoubleArray(k)
        counts = IntArray(k)
        renumber = IntArray(k + 1)
        refined = DoubleArray(5 * k)
        boxSums = DoubleArray(4 * (k + 1))
        refinedCount = IntArray(k)
        refinedOrder = IntArray(k)
        groupStart = IntArray(k + 2)
        refinedInto = IntArray(k + 1)
        settle = DoubleArray(k)
    }

    private fun ensurePerson(n: Int) {
        if (personIndex.size >= n) return
        personIndex = IntArray(n)
        personLabel = IntArray(n)
        personBox = DoubleArray(5 * n)
        values = DoubleArray(4 * n)
    }

    /** Scratch for [decodeInto]: x1, y1, x2, y2, area of the box being looked at. */
    private val box = DoubleArray(5)

    /**
     * Decodes the box of the cell whose offsets start at [o] and whose centre is ([cx], [cy]) input pixels into
     * [out] from index [at] as x1, y1, x2, y2, area (docs/grouper.md step 1 and "IoU", float64).
     */
    private fun decodeInto(off: FloatArray, o: Int, cx: Double, cy: Double, aw: Double, ah: Double, mls: Double,
                           out: DoubleArray, at: Int = 0) {
        val bw = aw * Math.exp(clamp(off[o + 2].toDouble(), mls))
        val bh = ah * Math.exp(clamp(off[o + 3].toDouble(), mls))
        val bx = cx + off[o].toDouble() * aw
        val by = cy + off[o + 1].toDouble() * ah
        out[at] = bx - bw / 2
        out[at + 1] = by - bh / 2
        out[at + 2] = bx + bw / 2
        out[at + 3] = by + bh / 2
        out[at + 4] = area(out[at], out[at + 1], out[at + 2], out[at + 3])
    }

    private fun run(prob: FloatArray, off: FloatArray, h: Int, w: Int, stride: Double, labels: IntArray): Instances {
        val n = h * w
        if (n == 0) return Instances(h, w, labels, FloatArray(0), FloatArray(0))
        val cfg = config
        val tC = cfg.tC
        val tFg = cfg.tFg
        val tIou = cfg.tIou
        val tNms = cfg.tNms
        val aw = cfg.anchorW
        val ah = cfg.anchorH
        val mls = cfg.maxLogScale

        // Step 2: peaks (p >= t_c and >= every in-map 8-neighbour), keyed for a stable descending sort.
        if (peakKeys.size < n) peakKeys = LongArray(n)
        val keys = peakKeys
        var np = 0
        for (i in 0 until h) {
            val row = i * w
            val interiorRow = i > 0 && i < h - 1
            for (j in 0 until w) {
                val idx = row + j
                val p = prob[idx]
                if (p.toDouble() < tC) continue
                val peak = if (interiorRow && j > 0 && j < w - 1) {
                    val up = idx - w
                    val dn = idx + w
                    prob[up - 1] <= p && prob[up] <= p && prob[up + 1] <= p &&
                        prob[idx - 1] <= p && prob[idx + 1] <= p &&
                        prob[dn - 1] <= p && prob[dn] <= p && prob[dn + 1] <= p
                } else {
                    isBorderPeak(prob, i, j, h, w, p)
                }
                if (peak) {
                    // p >= t_c >= 0: the bit pattern of the non-negative float (+0.0 for -0.0) is monotonic.
                    val bits = java.lang.Float.floatToRawIntBits(p + 0.0f).toLong()
                    keys[np++] = ((0x7FFFFFFFL - bits) shl 32) or idx.toLong()
                }
            }
        }
        if (np == 0) return Instances(h, w, labels, FloatArray(0), FloatArray(0))
        // Ascending key = probability descending, ties by raster index ascending (a stable sort on -prob).
        java.util.Arrays.sort(keys, 0, np)

        // Step 3: greedy NMS.
        val maxK = cfg.maxInstances
        ensureKept(if (maxK < np) maxK else np)
        val kx1 = keptX1
        val ky1 = keptY1
        val kx2 = keptX2
        val ky2 = keptY2
        val ka = keptArea
        var nk = 0
        var c = 0
        while (c < np && nk < maxK) {
            val idx = (keys[c] and 0xFFFFFFFFL).toInt()
            c++
            val i = idx / w
            val j = idx - i * w
            decodeInto(off, 4 * idx, (j + 0.5) * stride, (i + 0.5) * stride, aw, ah, mls, box)
            val x1 = box[0]
            val y1 = box[1]
            val x2 = box[2]
            val y2 = box[3]
            val area = box[4]
            var keep = true
            for (k in 0 until nk) {
                if (iou(x1, y1, x2, y2, area, kx1[k], ky1[k], kx2[k], ky2[k], ka[k]) > tNms) {
                    keep = false
                    break
                }
            }
            if (keep) {
                kx1[nk] = x1
                ky1[nk] = y1
                kx2[nk] = x2
                ky2[nk] = y2
                ka[nk] = area
                nk++
            }
        }
        if (nk == 0) return Instances(h, w, labels, FloatArray(0), FloatArray(0))

        // Step 1 for the person cells (p >= t_fg): their flat indices and decoded boxes.
        ensurePerson(n)
        val pIdx = personIndex
        val pBox = personBox
        var npc = 0
        for (i in 0 until h) {
            val row = i * w
            val cy = (i + 0.5) * stride
            for (j in 0 until w) {
                val idx = row + j
                if (prob[idx].toDouble() < tFg) continue
                pIdx[npc] = idx
                decodeInto(off, 4 * idx, (j + 0.5) * stride, cy, aw, ah, mls, pBox, 5 * npc)
                npc++
            }
        }

        // Step 4: assign person cells to the kept box of maximum IoU (ties: earlier), if >= t_iou.
        val rounds = if (cfg.mode == GrouperMode.REFINE) cfg.refineRounds else 0
        assign(prob, npc, nk, tIou, false, rounds == 0)
        // Step 4b (mode refine): refinement rounds, each followed by a new assignment.
        for (round in 0 until rounds) {
            nk = refineRound(npc, nk, tNms, cfg.refineStatistic)
            assign(prob, npc, nk, tIou, true, round == rounds - 1)
        }

        // Step 5: drop kept boxes without cells, renumber 1..M in kept order.
        val cnt = counts
        val sm = sums
        val ren = renumber
        ren[0] = 0
        var m = 0
        for (k in 0 until nk) ren[k + 1] = if (cnt[k] > 0) ++m else 0
        val pLab = personLabel
        for (c in 0 until npc) labels[pIdx[c]] = ren[pLab[c]]
        val boxes = FloatArray(4 * m)
        val scores = FloatArray(m)
        var q = 0
        for (k in 0 until nk) {
            if (cnt[k] == 0) continue
            boxes[4 * q] = keptX1[k].toFloat()
            boxes[4 * q + 1] = keptY1[k].toFloat()
            boxes[4 * q + 2] = keptX2[k].toFloat()
            boxes[4 * q + 3] = keptY2[k].toFloat()
            scores[q] = (sm[k] / cnt[k]).toFloat()
            q++
        }
        return Instances(h, w, labels, boxes, scores)
    }

    /**
     * Step 4 over the [npc] stored person cells against the first [nk] kept boxes: label (1-based, 0 = none) of
     * maximum IoU, ties to the earlier box, if >= [tIou]; `counts` of each kept box, and with [withSums] (the last
     * assignment) the `sums` of step 5 (raster order).
     *
     * [fromRefined] (after [refineRound]): a cell first tries the box its previous box refined into
     * (`refinedInto`). 1 - IoU is a metric (the Jaccard distance), so an IoU `a` with box `g` above `settle[g]` =
     * (1 + max IoU of `g` with another box) / 2 + [JACCARD_MARGIN] leaves every other box an IoU < `a`: `g` is the
     * strict argmax and the other boxes need not be tried. The labels are exactly those of the full loop.
     */
    private fun assign(prob: FloatArray, npc: Int, nk: Int, tIou: Double, fromRefined: Boolean, withSums: Boolean) {
        val kx1 = keptX1
        val ky1 = keptY1
        val kx2 = keptX2
        val ky2 = keptY2
        val ka = keptArea
        val sm = sums
        val cnt = counts
        val pBox = personBox
        val pLab = personLabel
        java.util.Arrays.fill(sm, 0, nk, 0.0)
        java.util.Arrays.fill(cnt, 0, nk, 0)
        val into = refinedInto
        val st = settle
        if (fromRefined) {
            for (k in 0 until nk) {
                var most = 0.0
                for (j in 0 until nk) {
                    if (j == k) continue
                    val v = iou(kx1[j], ky1[j], kx2[j], ky2[j], ka[j], kx1[k], ky1[k], kx2[k], ky2[k], ka[k])
                    if (v > most) most = v
                }
                st[k] = (1 + most) / 2 + JACCARD_MARGIN
            }
        }
        for (c in 0 until npc) {
            val b = 5 * c
            val x1 = pBox[b]
            val y1 = pBox[b + 1]
            val x2 = pBox[b + 2]
            val y2 = pBox[b + 3]
            val area = pBox[b + 4]
            if (fromRefined) {
                val g = into[pLab[c]] - 1
                if (g >= 0) {
                    val v = iou(x1, y1, x2, y2, area, kx1[g], ky1[g], kx2[g], ky2[g], ka[g])
                    if (v > st[g]) {
                        if (v >= tIou) {
                            pLab[c] = g + 1
                            if (withSums) sm[g] += prob[personIndex[c]].toDouble()
                            cnt[g]++
                        } else {
                            pLab[c] = 0
                        }
                        continue
                    }
                }
            }
            // IoU with every kept box (docs/grouper.md "IoU"), inlined; a box without overlap has IoU 0,
            // which only matters as the first value (argmax ties go to the earlier box).
            var best = -1.0
            var bestK = -1
            for (k in 0 until nk) {
                val iw = (if (x2 < kx2[k]) x2 else kx2[k]) - (if (x1 > kx1[k]) x1 else kx1[k])
                val ih = if (iw > 0.0) (if (y2 < ky2[k]) y2 else ky2[k]) - (if (y1 > ky1[k]) y1 else ky1[k]) else 0.0
                if (ih <= 0.0) {
                    if (best < 0.0) {
                        best = 0.0
                        bestK = k
                    }
                    continue
                }
                val inter = iw * ih
                val union = area + ka[k] - inter
                val v = if (union > 0.0) inter / union else 0.0
                if (v > best) {
                    best = v
                    bestK = k
                }
            }
            if (bestK >= 0 && best >= tIou) {
                pLab[c] = bestK + 1
                if (withSums) sm[bestK] += prob[personIndex[c]].toDouble()
                cnt[bestK]++
            } else {
                pLab[c] = 0
            }
        }
    }

    /**
     * Median boxes (docs/grouper.md step 4b) of the [nk] kept boxes that have cells, in kept order, into [refined]
     * (5 per box: x1, y1, x2, y2, area) and their cell counts into [refinedCount]; returns their number. The cells'
     * coordinates are grouped by label, then each group is reordered in place by the selection.
     */
    private fun medianBoxes(npc: Int, nk: Int): Int {
        val cnt = counts
        val start = groupStart
        val pLab = personLabel
        val vals = values
        val pBox = personBox
        // Group the cells' coordinates by label (counting sort; label 0 first): coordinate q of label l is
        // vals[q * npc + start[l] until q * npc + start[l + 1]].
        start[0] = 0
        start[1] = npc - (0 until nk).sumBy { cnt[it] }
        for (k in 0 until nk) start[k + 2] = start[k + 1] + cnt[k]
        val fill = start.copyOf(nk + 1)
        for (c in 0 until npc) {
            val at = fill[pLab[c]]++
            val b = 5 * c
            vals[at] = pBox[b]
            vals[npc + at] = pBox[b + 1]
            vals[2 * npc + at] = pBox[b + 2]
            vals[3 * npc + at] = pBox[b + 3]
        }
        val r = refined
        var nr = 0
        for (k in 0 until nk) {
            val n = cnt[k]
            if (n == 0) continue
            val from = start[k + 1]
            for (coordinate in 0 until 4) r[5 * nr + coordinate] = median(vals, coordinate * npc + from, n)
            r[5 * nr + 4] = area(r[5 * nr], r[5 * nr + 1], r[5 * nr + 2], r[5 * nr + 3])
            refinedCount[nr] = n
            nr++
        }
        return nr
    }

    /**
     * Mean boxes (docs/grouper.md step 4b), as [medianBoxes]: one pass over the cells in raster order adds each
     * coordinate to its label's float64 sum, then each sum is divided by the cell count.
     */
    private fun meanBoxes(npc: Int, nk: Int): Int {
        val cnt = counts
        val pLab = personLabel
        val pBox = personBox
        val s = boxSums
        java.util.Arrays.fill(s, 0, 4 * nk + 4, 0.0)
        for (c in 0 until npc) {  // label 0 sums into s[0 until 4], unused
            val at = 4 * pLab[c]
            val b = 5 * c
            s[at] += pBox[b]
            s[at + 1] += pBox[b + 1]
            s[at + 2] += pBox[b + 2]
            s[at + 3] += pBox[b + 3]
        }
        val r = refined
        var nr = 0
        for (k in 0 until nk) {
            val n = cnt[k]
            if (n == 0) continue
            val at = 4 * (k + 1)
            val count = n.toDouble()
            for (coordinate in 0 until 4) r[5 * nr + coordinate] = s[at + coordinate] / count
            r[5 * nr + 4] = area(r[5 * nr], r[5 * nr + 1], r[5 * nr + 2], r[5 * nr + 3])
            refinedCount[nr] = n
            nr++
        }
        return nr
    }

    /**
     * One refinement round (docs/grouper.md step 4b) on the labels of the last [assign]: the per-coordinate
     * [statistic] (median or mean) box of each of the [nk] kept boxes' cells (boxes without cells dropped),
     * duplicates removed by greedy NMS scored by cell count (ties: lower number), the survivors written back as
     * kept boxes in their previous order. Returns their number; the caller assigns the cells again.
     */
    private fun refineRound(npc: Int, nk: Int, tNms: Double, statistic: RefineStatistic): Int {
        val cnt = counts
        val r = refined
        val nr = if (statistic == RefineStatistic.MEAN) meanBoxes(npc, nk) else medianBoxes(npc, nk)
        // Duplicate removal: greedy NMS by cell count descending, equal counts by number ascending
        // (insertion sort: stable, and there are at most max_instances boxes).
        val order = refinedOrder
        for (a in 0 until nr) {
            var b = a
            while (b > 0 && refinedCount[order[b - 1]] < refinedCount[a]) {
                order[b] = order[b - 1]
                b--
            }
            order[b] = a
        }
        val survives = BooleanArray(nr)
        val survivors = IntArray(nr)
        var ns = 0
        for (o in 0 until nr) {
            val a = order[o]
            val x = 5 * a
            var keep = true
            for (s in 0 until ns) {
                val y = 5 * survivors[s]
                if (iou(r[x], r[x + 1], r[x + 2], r[x + 3], r[x + 4], r[y], r[y + 1], r[y + 2], r[y + 3], r[y + 4]) > tNms) {
                    keep = false
                    break
                }
            }
            if (keep) {
                survivors[ns++] = a
                survives[a] = true
            }
        }
        // The survivors in their previous (number) order become the kept boxes of the next assignment; each
        // previous label learns the label of its refined box (0 when it had no cell or its refined box was removed).
        val into = refinedInto
        into[0] = 0
        var nk2 = 0
        var a = 0
        for (k in 0 until nk) {
            into[k + 1] = 0
            if (cnt[k] == 0) continue
            if (survives[a]) {
                keptX1[nk2] = r[5 * a]
                keptY1[nk2] = r[5 * a + 1]
                keptX2[nk2] = r[5 * a + 2]
                keptY2[nk2] = r[5 * a + 3]
                keptArea[nk2] = r[5 * a + 4]
                nk2++
                into[k + 1] = nk2
            }
            a++
        }
        return nk2
    }

    private companion object {
        /** Peak test of a cell on the map border: in-map neighbours only. */
        @JvmStatic
        fun isBorderPeak(prob: FloatArray, i: Int, j: Int, h: Int, w: Int, p: Float): Boolean {
            for (k in (if (i > 0) i - 1 else 0)..(if (i < h - 1) i + 1 else h - 1)) {
                val r = k * w
                for (l in (if (j > 0) j - 1 else 0)..(if (j < w - 1) j + 1 else w - 1)) {
                    if (prob[r + l] > p) return false
                }
            }
            return true
        }

        /** Slack of the settling test of [assign]: IoU rounding errors are ~1e-15. */
        const val JACCARD_MARGIN = 1e-9

        /** Smallest count for which [narrow] splits at sampled pivots. */
        const val SAMPLED_SELECT_MINIMUM = 64

        /**
         * Median of `v[from until from + n]`, n >= 1 (docs/grouper.md step 4b): the middle value, or `(a + b) / 2`
         * of the two middle values of an even count. Reorders the values (selection in O(n), no full sort).
         */
        @JvmStatic
        fun median(v: DoubleArray, from: Int, n: Int): Double {
            val k = from + n / 2
            val range = narrow(v, from, n, k)
            val lo = (range ushr 32).toInt()
            val upper = select(v, lo, range.toInt(), k)
            if (n % 2 == 1) return upper
            // v[from until k] hold the n/2 smallest values and v[from until lo] <= v[lo until k]: their maximum is
            // the lower middle.
            val start = if (k > lo) lo else from
            var lower = v[start]
            for (m in start + 1 until k) if (v[m] > lower) lower = v[m]
            return (lower + upper) / 2
        }

        /**
         * From [SAMPLED_SELECT_MINIMUM] values on, one three-way pass splits `v[from until from + n]` at two pivots
         * that bracket the value of rank [k] (an index into [v]) in a sorted sample of 16 (values below, between,
         * above them); returns the inclusive range lo, hi of the part holding rank [k] (about a quarter of the
         * values when the sample brackets it) packed as `lo shl 32 or hi`: the values before lo are <= those from lo
         * to hi, which are <= those after hi. Smaller counts: the whole range.
         */
        @JvmStatic
        fun narrow(v: DoubleArray, from: Int, n: Int, k: Int): Long {
            val end = from + n - 1
            if (n < SAMPLED_SELECT_MINIMUM) return (from.toLong() shl 32) or end.toLong()
            val s = DoubleArray(16)
            for (m in 0 until 16) { // insertion sort of v[from], v[from + n / 16], ..., v[from + 15 n / 16]
                val x = v[from + m * n / 16]
                var p = m
                while (p > 0 && s[p - 1] > x) {
                    s[p] = s[p - 1]
                    p--
                }
                s[p] = x
            }
            val t = (k - from) * 16 / n
            val low = s[if (t - 2 > 0) t - 2 else 0]
            val high = s[if (t + 2 < 15) t + 2 else 15]
            var below = from // v[from until below] < low, v[above + 1..end] > high
            var i = from
            var above = end
            while (i <= above) {
                val x = v[i]
                if (x < low) {
                    v[i] = v[below]
                    v[below] = x
                    below++
                    i++
                } else if (x > high) {
                    v[i] = v[above]
                    v[above] = x
                    above--
                } else {
                    i++
                }
            }
            val lo = if (k < below) from else if (k > above) above + 1 else below
            val hi = if (k < below) below - 1 else if (k > above) end else above
            return (lo.toLong() shl 32) or hi.toLong()
        }

        /**
         * The value of rank [k] (an index into [v]) among the values from [start] to [end] (inclusive) by Hoare
         * partitioning around a median-of-three pivot, when the values before [start] are <= those and the values
         * after [end] are >= them; afterwards the values from [start] before [k] are <= `v[k]` <= those after it.
         */
        @JvmStatic
        fun select(v: DoubleArray, start: Int, end: Int, k: Int): Double {
            var lo = start
            var hi = end
            while (lo < hi) {
                val a = v[lo]
                val b = v[lo + (hi - lo) / 2]
                val c = v[hi]
                val pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c))
                var i = lo
                var j = hi
                while (i <= j) {
                    while (v[i] < pivot) i++
                    while (v[j] > pivot) j--
                    if (i <= j) {
                        val t = v[i]
                        v[i] = v[j]
                        v[j] = t
                        i++
                        j--
                    }
                }
                if (k <= j) hi = j else if (k >= i) lo = i else return v[k]
            }
            return v[k]
        }

        @JvmStatic
        fun clamp(v: Double, m: Double): Double = if (v < -m) -m else if (v > m) m else v

        @JvmStatic
        fun area(x1: Double, y1: Double, x2: Double, y2: Double): Double {
            val dx = x2 - x1
            val dy = y2 - y1
            return (if (dx > 0.0) dx else 0.0) * (if (dy > 0.0) dy else 0.0)
        }

        /** IoU of box a (with its area) and box b (with its area), docs/grouper.md "IoU"; 0 for an empty union. */
        @JvmStatic
        fun iou(
            ax1: Double, ay1: Double, ax2: Double, ay2: Double, aArea: Double,
            bx1: Double, by1: Double, bx2: Double, by2: Double, bArea: Double
        ): Double {
            val iw = (if (ax2 < bx2) ax2 else bx2) - (if (ax1 > bx1) ax1 else bx1)
            val ih = (if (ay2 < by2) ay2 else by2) - (if (ay1 > by1) ay1 else by1)
            if (iw <= 0.0 || ih <= 0.0) return 0.0 // inter = 0, so the IoU is 0 (or 0 by convention)
            val inter = iw * ih
            val union = aArea + bArea - inter
            return if (union > 0.0) inter / union else 0.0
        }
    }
}
