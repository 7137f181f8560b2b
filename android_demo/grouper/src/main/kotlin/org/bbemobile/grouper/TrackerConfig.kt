package org.bbemobile.grouper

/**
 * Parameters of the video tracker (docs/tracker.md, "Configuration: TrackerConfig"); every default is the
 * documented one. The constructor validates every field and throws [IllegalArgumentException] naming it.
 *
 * @property smoothing weight of the new frame in the exponential average of `prob`, in (0, 1] (1: none).
 * @property tScene scene-change threshold on the Jaccard distance of consecutive semantic masks, in [0, 1].
 * @property tFg person threshold of the scene measure, in [0, 1].
 * @property tMatch minimum mask IoU of a track and a detection, in (0, 1].
 * @property minHits consecutive matched frames before a track is confirmed and gets an ID (>= 1).
 * @property maxAge frames a confirmed track survives without a match (>= 0).
 * @property wArea main-person weight of the area term (>= 0); [wCenter], [wAge] likewise.
 * @property ageFrames track age at which the age term saturates (>= 1).
 * @property switchMargin a challenger must score more than the main person plus this (>= 0) ...
 * @property switchFrames ... for this many consecutive frames (>= 1).
 */
data class TrackerConfig(
    val smoothing: Double = 0.6,
    val tScene: Double = 0.6,
    val tFg: Double = 0.5,
    val tMatch: Double = 0.2,
    val minHits: Int = 3,
    val maxAge: Int = 15,
    val wArea: Double = 1.0,
    val wCenter: Double = 0.5,
    val wAge: Double = 0.25,
    val ageFrames: Int = 30,
    val switchMargin: Double = 0.1,
    val switchFrames: Int = 10
) {
    init {
        require(isFinite(smoothing) && smoothing > 0.0 && smoothing <= 1.0) { "TrackerConfig.smoothing must be in (0, 1], got $smoothing" }
        require(isFinite(tMatch) && tMatch > 0.0 && tMatch <= 1.0) { "TrackerConfig.t_match must be in (0, 1], got $tMatch" }
        for ((name, value) in listOf("t_scene" to tScene, "t_fg" to tFg)) {
            require(isFinite(value) && value >= 0.0 && value <= 1.0) { "TrackerConfig.$name must be in [0, 1], got $value" }
        }
        for ((name, value) in listOf("w_area" to wArea, "w_center" to wCenter, "w_age" to wAge, "switch_margin" to switchMargin)) {
            require(isFinite(value) && value >= 0.0) { "TrackerConfig.$name must be finite and >= 0, got $value" }
        }
        require(minHits >= 1) { "TrackerConfig.min_hits must be an integer >= 1, got $minHits" }
        require(maxAge >= 0) { "TrackerConfig.max_age must be an integer >= 0, got $maxAge" }
        require(ageFrames >= 1) { "TrackerConfig.age_frames must be an integer >= 1, got $ageFrames" }
        require(switchFrames >= 1) { "TrackerConfig.switch_frames must be an integer >= 1, got $switchFrames" }
    }

    companion object {
        private fun isFinite(v: Double) = !v.isNaN() && !v.isInfinite()

        /** Config from a golden sequence's `tracker` object (the snake-case keys of Python's `TrackerConfig`). */
        @JvmStatic
        fun fromMetadata(obj: Map<String, Any?>): TrackerConfig {
            val r = JsonFields(obj, "tracker config")
            return TrackerConfig(
                smoothing = r.double("smoothing"), tScene = r.double("t_scene"), tFg = r.double("t_fg"),
                tMatch = r.double("t_match"), minHits = r.int("min_hits"), maxAge = r.int("max_age"),
                wArea = r.double("w_area"), wCenter = r.double("w_center"), wAge = r.double("w_age"),
                ageFrames = r.int("age_frames"), switchMargin = r.double("switch_margin"),
                switchFrames = r.int("switch_frames")
            )
        }
    }
}
