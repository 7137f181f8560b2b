package org.bbemobile.grouper

import java.io.File

/** The expected tracker output of one golden frame. */
class GoldenTrackingFrame(val ids: IntArray, val mainId: Int, val sceneChange: Boolean)

/**
 * One golden tracking sequence of `tests/golden/` (format in `bbe_mobile/golden_tracking.py`): per frame the
 * grouper input and the expected smoothed map, labels, IDs, main person and scene change. Arrays hold all
 * frames one after the other ([frame] slices one out).
 */
class GoldenTrackingSequence(
    val name: String,
    val frames: Int,
    val height: Int,
    val width: Int,
    val stride: Double,
    val contentHeight: Double,
    val contentWidth: Double,
    val grouper: GrouperConfig,
    val tracker: TrackerConfig,
    val prob: FloatArray,
    val offsets: FloatArray,
    val smoothed: FloatArray,
    val labels: IntArray,
    val expected: List<GoldenTrackingFrame>
) {
    /** Frame [t]'s `perFrame` values of [values]. */
    fun frame(values: FloatArray, t: Int, perFrame: Int): FloatArray = values.copyOfRange(t * perFrame, (t + 1) * perFrame)

    fun frame(values: IntArray, t: Int, perFrame: Int): IntArray = values.copyOfRange(t * perFrame, (t + 1) * perFrame)

    companion object {
        /** Sequence names listed by `tracking.json` of the golden directory [dir]. */
        @JvmStatic
        fun index(dir: File): List<String> {
            val what = "tracking.json"
            val doc = JsonFields(MiniJson.parseObject(String(GoldenCase.read({ File(dir, it).readBytes() }, what), Charsets.UTF_8), what), what)
            return doc.list("sequences").map { it as? String ?: throw IllegalArgumentException("$what: names must be strings") }
        }

        /** Loads sequence [name] from the golden directory [dir]. */
        @JvmStatic
        fun load(dir: File, name: String): GoldenTrackingSequence {
            val open = { file: String -> File(dir, file).readBytes() }
            val what = "$name.json"
            val r = JsonFields(MiniJson.parseObject(String(GoldenCase.read(open, what), Charsets.UTF_8), what), what)
            val t = r.int("frames")
            require(t in 0..10000) { "$what: frames must be in 0..10000, got $t" }
            val h = r.int("height")
            val w = r.int("width")
            val n = GoldenCase.cellCount(h, w, what) * t
            val grouper = r.objectOrNull("grouper") ?: throw IllegalArgumentException("$what is missing \"grouper\"")
            val tracker = r.objectOrNull("tracker") ?: throw IllegalArgumentException("$what is missing \"tracker\"")
            val expected = r.list("expected").map { raw ->
                @Suppress("UNCHECKED_CAST")
                val e = JsonFields(raw as? Map<String, Any?> ?: throw IllegalArgumentException("$what: expected frames must be objects"), what)
                GoldenTrackingFrame(e.doubles("ids").map { it.toInt() }.toIntArray(), e.int("main_id"),
                    e.raw("scene_change") as? Boolean ?: throw IllegalArgumentException("$what: scene_change must be a boolean"))
            }
            require(expected.size == t) { "$what: expected must hold one object per frame" }
            return GoldenTrackingSequence(
                name, t, h, w, r.double("stride"), r.double("content_height"), r.double("content_width"),
                GrouperConfig.fromMetadata(grouper), TrackerConfig.fromMetadata(tracker),
                GoldenCase.floats(GoldenCase.read(open, r.string("prob_file")), n, r.string("prob_file")),
                GoldenCase.floats(GoldenCase.read(open, r.string("offsets_file")), 4 * n, r.string("offsets_file")),
                GoldenCase.floats(GoldenCase.read(open, r.string("smoothed_file")), n, r.string("smoothed_file")),
                GoldenCase.ints(GoldenCase.read(open, r.string("labels_file")), n, r.string("labels_file")),
                expected
            )
        }
    }
}
