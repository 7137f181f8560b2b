package org.bbemobile.grouper

/**
 * One track of docs/tracker.md: [id] (0 while tentative), consecutive [hits] and [misses], [age] (frames since
 * birth) and [mask], the flat raster indices (ascending) of its last matched cells.
 */
class Track(val id: Int, val hits: Int, val misses: Int, val age: Int, val mask: IntArray)

/**
 * Everything one video stream carries from frame to frame; `TrackerState()` starts a new video. Immutable: each
 * step returns a new state. [smoothed] is the last smoothed map (`smoothedHeight * smoothedWidth`) or null;
 * [tracks] are in creation order, their masks refer to a `height x width` map.
 */
class TrackerState(
    val smoothed: FloatArray? = null,
    val smoothedHeight: Int = 0,
    val smoothedWidth: Int = 0,
    val tracks: List<Track> = emptyList(),
    val height: Int = -1,
    val width: Int = -1,
    val nextId: Int = 1,
    val mainId: Int = 0,
    val challengerId: Int = 0,
    val challengerFrames: Int = 0
)

/** One frame's output: [ids] per grouper instance (0: tentative), [mainId] (0: none), smoothing reset or not. */
class TrackedFrame(val ids: IntArray, val mainId: Int, val sceneChange: Boolean)

/** [Tracker.step]'s result. */
class TrackerStep(val state: TrackerState, val instances: Instances, val frame: TrackedFrame)

/**
 * The video tracker of docs/tracker.md: smoothing of the person probability with a scene-change reset, stable
 * person IDs by mask IoU at model stride, and the main person with hysteresis. Pure functions
 * `(state, this frame) -> (state, output)`; `Double` and integer arithmetic in the spec's order, so the results
 * equal Python's and Swift's bit for bit.
 */
object Tracker {
    /** Step 1: the new smoothed map and whether a scene change reset it (`Pair(map, sceneChange)`). */
    @JvmStatic
    fun smooth(state: TrackerState, prob: FloatArray, height: Int, width: Int, config: TrackerConfig): Pair<FloatArray, Boolean> {
        require(height >= 0 && width >= 0 && prob.size.toLong() == height.toLong() * width) {
            "prob has ${prob.size} values, expected $height x $width"
        }
        val previous = state.smoothed
        if (previous == null || state.smoothedHeight != height || state.smoothedWidth != width) {
            for (i in prob.indices) checkFinite(prob[i].toDouble(), i)
            return Pair(prob.copyOf(), true)
        }
        // One branch-light pass: finiteness, the scene measure and the blend (dropped on a scene change).
        val out = FloatArray(prob.size)
        val a = config.smoothing
        val tFg = config.tFg
        var inter = 0
        var union = 0
        var finite = true
        for (i in prob.indices) {
            val p0 = previous[i].toDouble()
            val p1 = prob[i].toDouble()
            finite = finite and (Math.abs(p1) <= Double.MAX_VALUE)  // false for NaN and +-inf
            val was = if (p0 >= tFg) 1 else 0
            val now = if (p1 >= tFg) 1 else 0
            inter += was and now
            union += was or now
            out[i] = (p0 + a * (p1 - p0)).toFloat()
        }
        if (!finite) for (i in prob.indices) checkFinite(prob[i].toDouble(), i)
        if (union > 0 && (union - inter).toDouble() > config.tScene * union.toDouble()) return Pair(prob.copyOf(), true)
        return Pair(out, false)
    }

    private fun checkFinite(value: Double, index: Int) {
        require(!value.isNaN() && !value.isInfinite()) { "prob contains NaN or inf (first at flat index $index)" }
    }

    /**
     * Steps 2-4 on this frame's grouper [labels] (`height * width`, instances `1..M`): the new state (its smoothed
     * map unchanged) and the frame's IDs and main person. [contentHeight]/[contentWidth]: the map extent showing the
     * image, in cells (NaN: the whole map).
     */
    @JvmStatic
    @JvmOverloads
    fun update(
        state: TrackerState, labels: IntArray, height: Int, width: Int, config: TrackerConfig = TrackerConfig(),
        contentHeight: Double = Double.NaN, contentWidth: Double = Double.NaN
    ): Pair<TrackerState, TrackedFrame> {
        require(height >= 0 && width >= 0 && labels.size.toLong() == height.toLong() * width) {
            "labels has ${labels.size} values, expected $height x $width"
        }
        for (value in doubleArrayOf(contentHeight, contentWidth)) {
            require(value.isNaN() || (!value.isInfinite() && value > 0)) { "content_hw must be finite and > 0, got $value" }
        }
        val ch = if (contentHeight.isNaN()) height.toDouble() else contentHeight  // NaN: the whole map
        val cw = if (contentWidth.isNaN()) width.toDouble() else contentWidth
        var detections = 0
        var counts = IntArray(32)  // cells per label, grown when a larger label appears
        for (label in labels) {
            require(label >= 0) { "labels must be >= 0, got $label" }
            if (label >= counts.size) counts = counts.copyOf(Math.max(label + 1, 2 * counts.size))
            counts[label]++
            if (label > detections) detections = label
        }
        val cells = Array(detections + 1) { IntArray(if (it == 0) 0 else counts[it]) }  // no background list
        val fill = IntArray(detections + 1)
        val rowSums = LongArray(detections + 1)  // row and column index sums per label (step 4's centroids)
        val colSums = LongArray(detections + 1)
        for (i in 0 until height) {
            for (j in 0 until width) {
                val label = labels[i * width + j]
                if (label == 0) continue
                cells[label][fill[label]++] = i * width + j
                rowSums[label] += i.toLong()
                colSums[label] += j.toLong()
            }
        }
        val tracks = if (state.height == height && state.width == width) state.tracks else emptyList()
        val taken = associate(tracks, labels, cells, config.tMatch)

        var nextId = state.nextId
        val survivors = ArrayList<Track>()
        val owner = IntArray(detections + 1) { -1 }
        for ((k, track) in tracks.withIndex()) {
            val d = taken[k]
            if (d >= 0) {
                val hits = track.hits + 1
                var id = track.id
                if (id == 0 && hits >= config.minHits) id = nextId++
                owner[d] = survivors.size
                survivors.add(Track(id, hits, 0, track.age + 1, cells[d]))
            } else {
                if (track.id == 0 || track.misses + 1 > config.maxAge) continue
                survivors.add(Track(track.id, 0, track.misses + 1, track.age + 1, track.mask))
            }
        }
        for (d in 1..detections) {
            if (owner[d] >= 0 || cells[d].isEmpty()) continue
            val id = if (config.minHits <= 1) nextId++ else 0
            owner[d] = survivors.size
            survivors.add(Track(id, 1, 0, 0, cells[d]))
        }
        val ids = IntArray(detections) { if (owner[it + 1] >= 0) survivors[owner[it + 1]].id else 0 }

        var leader = 0
        var leaderScore = 0.0
        var mainPersonScore = 0.0
        val detectionOf = IntArray(survivors.size)
        for (d in 1..detections) if (owner[d] >= 0) detectionOf[owner[d]] = d
        for ((k, track) in survivors.withIndex()) {
            if (track.id == 0 || track.misses != 0) continue
            val d = detectionOf[k]
            val score = mainScore(track.mask.size, rowSums[d], colSums[d], track.age, ch, cw, config)
            if (leader == 0 || score > leaderScore || (score == leaderScore && track.id < leader)) {
                leader = track.id
                leaderScore = score
            }
            if (track.id == state.mainId) mainPersonScore = score
        }
        var mainId = state.mainId
        var challengerId = 0
        var challengerFrames = 0
        if (survivors.none { it.id != 0 && it.id == state.mainId }) {
            mainId = leader
        } else if (leader != 0 && leader != state.mainId && leaderScore > mainPersonScore + config.switchMargin) {
            challengerFrames = if (leader == state.challengerId) state.challengerFrames + 1 else 1
            challengerId = leader
            if (challengerFrames >= config.switchFrames) {
                mainId = leader
                challengerId = 0
                challengerFrames = 0
            }
        }
        val next = TrackerState(state.smoothed, state.smoothedHeight, state.smoothedWidth, survivors, height, width,
            nextId, mainId, challengerId, challengerFrames)
        return Pair(next, TrackedFrame(ids, mainId, false))
    }

    /**
     * All steps on one frame: smooth [prob], group the smoothed map with [group] (the grouper with this frame's
     * offsets) and track its instances.
     */
    @JvmStatic
    @JvmOverloads
    fun step(
        state: TrackerState, prob: FloatArray, height: Int, width: Int, config: TrackerConfig = TrackerConfig(),
        contentHeight: Double = Double.NaN, contentWidth: Double = Double.NaN, group: (FloatArray) -> Instances
    ): TrackerStep {
        val (smoothed, sceneChange) = smooth(state, prob, height, width, config)
        val instances = group(smoothed)
        val withMap = TrackerState(smoothed, height, width, state.tracks, state.height, state.width, state.nextId,
            state.mainId, state.challengerId, state.challengerFrames)
        val (next, frame) = update(withMap, instances.labels, height, width, config, contentHeight, contentWidth)
        return TrackerStep(next, instances, TrackedFrame(frame.ids, frame.mainId, sceneChange))
    }

    /**
     * Step 2: the detection number taken by each track position (-1: none), greedy by descending mask IoU (integer
     * cross products; ties by track position, then detection number).
     */
    internal fun associate(tracks: List<Track>, labels: IntArray, cells: Array<IntArray>, tMatch: Double): IntArray {
        val taken = IntArray(tracks.size) { -1 }
        val detections = cells.size - 1
        if (tracks.isEmpty() || detections == 0) return taken
        val candidates = ArrayList<IntArray>()  // inter, union, track, detection
        val inters = IntArray(detections + 1)
        for ((k, track) in tracks.withIndex()) {
            java.util.Arrays.fill(inters, 0)
            for (c in track.mask) inters[labels[c]]++
            for (d in 1..detections) {
                val inter = inters[d]
                if (inter == 0) continue
                val union = track.mask.size + cells[d].size - inter
                if (inter.toDouble() >= tMatch * union.toDouble()) candidates.add(intArrayOf(inter, union, k, d))
            }
        }
        candidates.sortWith(Comparator { a, b ->
            val left = a[0].toLong() * b[1]
            val right = b[0].toLong() * a[1]
            when {
                left != right -> if (left > right) -1 else 1
                a[2] != b[2] -> a[2].compareTo(b[2])
                else -> a[3].compareTo(b[3])
            }
        })
        val used = BooleanArray(detections + 1)
        for (c in candidates) {
            if (taken[c[2]] >= 0 || used[c[3]]) continue
            taken[c[2]] = c[3]
            used[c[3]] = true
        }
        return taken
    }

    /**
     * Step 4's score of a matched confirmed track of [n] cells whose row and column indices sum to [sumRows],
     * [sumCols]: area, centrality and age terms, in the spec's order.
     */
    internal fun mainScore(n: Int, sumRows: Long, sumCols: Long, age: Int, contentHeight: Double, contentWidth: Double,
                           c: TrackerConfig): Double {
        val area = Math.min(1.0, n.toDouble() / (contentHeight * contentWidth))
        val cx = sumCols.toDouble() / n + 0.5
        val cy = sumRows.toDouble() / n + 0.5
        val ux = (cx - contentWidth / 2) / (contentWidth / 2)
        val uy = (cy - contentHeight / 2) / (contentHeight / 2)
        val center = Math.max(0.0, 1.0 - (ux * ux + uy * uy) / 2)
        val grown = Math.min(age, c.ageFrames).toDouble() / c.ageFrames
        return c.wArea * area + c.wCenter * center + c.wAge * grown
    }
}
