package org.bbemobile.grouper

/**
 * How instance boxes are made (docs/grouper.md): the paper's peak boxes, or boxes refined by the median or the
 * mean ([RefineStatistic]) of their cells' boxes (Grouper v2).
 *
 * @property metadataName the value of the `mode` metadata key.
 */
enum class GrouperMode(val metadataName: String) {
    /** The paper's grouper: steps 1-5. */
    PAPER("paper"),

    /** Steps 1-4, [GrouperConfig.refineRounds] refinement rounds (step 4b), then step 5. */
    REFINE("refine");

    companion object {
        /** The mode of a `mode` metadata value; [IllegalArgumentException] for another value. */
        @JvmStatic
        fun fromMetadata(name: String): GrouperMode = values().firstOrNull { it.metadataName == name }
            ?: throw IllegalArgumentException("GrouperConfig.mode must be \"paper\" or \"refine\", got \"$name\"")
    }
}

/**
 * The per-coordinate statistic of a refined box over its cells' boxes (docs/grouper.md step 4b).
 *
 * @property metadataName the value of the `refine_statistic` metadata key.
 */
enum class RefineStatistic(val metadataName: String) {
    /** The middle value, or the mean of the two middle values of an even count. */
    MEDIAN("median"),

    /** The float64 sum in raster order of the cells, divided by their count. */
    MEAN("mean");

    companion object {
        /** The statistic of a `refine_statistic` metadata value; [IllegalArgumentException] for another value. */
        @JvmStatic
        fun fromMetadata(name: String): RefineStatistic = values().firstOrNull { it.metadataName == name }
            ?: throw IllegalArgumentException(
                "GrouperConfig.refine_statistic must be \"median\" or \"mean\", got \"$name\"")
    }
}

/**
 * Thresholds, anchor and mode of the BBE grouper (docs/grouper.md, "GrouperConfig").
 *
 * Probabilities and IoUs are in [0, 1]; the anchor is in input pixels. The defaults are the paper's;
 * a model's `bbe` metadata overrides them ([fromMetadataJson]). The constructor validates every field and
 * throws [IllegalArgumentException] naming the field when one is out of range.
 *
 * @property tC minimum probability of a peak (seed box), non-strict.
 * @property tNms NMS IoU threshold: a candidate is suppressed when its IoU with a kept box is `> tNms`.
 * @property tFg minimum probability of a person cell, non-strict.
 * @property tIou minimum IoU between a cell's box and its instance box, non-strict.
 * @property maxInstances most instances kept (>= 0).
 * @property anchorW anchor width in input pixels (> 0).
 * @property anchorH anchor height in input pixels (> 0).
 * @property maxLogScale `dw` and `dh` are clamped to `[-maxLogScale, maxLogScale]` before `exp` (> 0).
 * @property mode the paper's boxes or refined ones.
 * @property refineRounds refinement rounds of [GrouperMode.REFINE] (>= 1; ignored by [GrouperMode.PAPER]).
 * @property refineStatistic the statistic of the refined boxes of [GrouperMode.REFINE].
 */
data class GrouperConfig(
    val tC: Double = 0.6,
    val tNms: Double = 0.4,
    val tFg: Double = 0.5,
    val tIou: Double = 0.3,
    val maxInstances: Int = 20,
    val anchorW: Double = DEFAULT_ANCHOR_W,
    val anchorH: Double = DEFAULT_ANCHOR_H,
    val maxLogScale: Double = 4.0,
    val mode: GrouperMode = GrouperMode.PAPER,
    val refineRounds: Int = 1,
    val refineStatistic: RefineStatistic = RefineStatistic.MEDIAN
) {
    init {
        checkUnit("t_c", tC)
        checkUnit("t_nms", tNms)
        checkUnit("t_fg", tFg)
        checkUnit("t_iou", tIou)
        require(maxInstances >= 0) { "GrouperConfig.max_instances must be >= 0, got $maxInstances" }
        checkPositive("anchor_w", anchorW)
        checkPositive("anchor_h", anchorH)
        checkPositive("max_log_scale", maxLogScale)
        require(refineRounds >= 1) { "GrouperConfig.refine_rounds must be >= 1, got $refineRounds" }
    }

    companion object {
        /** Anchor width: sqrt(96² / 1.5) = 78.38367176906169 input pixels (area 96², h/w = 1.5). */
        @JvmField
        val DEFAULT_ANCHOR_W: Double = Math.sqrt(96.0 * 96.0 / 1.5)

        /** Anchor height: sqrt(96² · 1.5) = 117.57550765359255 input pixels. */
        @JvmField
        val DEFAULT_ANCHOR_H: Double = Math.sqrt(96.0 * 96.0 * 1.5)

        /** The metadata keys read by [fromMetadata], all required. */
        @JvmField
        val METADATA_KEYS: List<String> =
            listOf("t_c", "t_nms", "t_fg", "t_iou", "max_instances", "anchor_w", "anchor_h", "max_log_scale")

        /** Keys of Grouper v2, optional: a file without them (written before) means paper, 1 round, median. */
        @JvmField
        val OPTIONAL_METADATA_KEYS: List<String> = listOf("mode", "refine_rounds", "refine_statistic")

        private fun checkUnit(name: String, value: Double) {
            require(value >= 0.0 && value <= 1.0) { "GrouperConfig.$name must be in [0, 1], got $value" }
        }

        private fun checkPositive(name: String, value: Double) {
            require(!value.isNaN() && !value.isInfinite() && value > 0.0) {
                "GrouperConfig.$name must be finite and > 0, got $value"
            }
        }

        /**
         * Config from the `bbe` metadata JSON text (docs/metadata.md): reads the eight grouper keys, all
         * required, and the optional `mode` (default paper), `refine_rounds` (default 1) and `refine_statistic`
         * (default median). Other keys are
         * ignored here (see [BbeMetadata] for the whole object).
         *
         * @throws IllegalArgumentException on malformed JSON, a missing key, a wrong type or an invalid value.
         */
        @JvmStatic
        fun fromMetadataJson(json: String): GrouperConfig = fromMetadata(MiniJson.parseObject(json, "bbe metadata"))

        /** Config from an already parsed `bbe` metadata object; see [fromMetadataJson]. */
        @JvmStatic
        fun fromMetadata(obj: Map<String, Any?>): GrouperConfig {
            val r = JsonFields(obj, "bbe metadata")
            return GrouperConfig(
                tC = r.double("t_c"),
                tNms = r.double("t_nms"),
                tFg = r.double("t_fg"),
                tIou = r.double("t_iou"),
                maxInstances = r.int("max_instances"),
                anchorW = r.double("anchor_w"),
                anchorH = r.double("anchor_h"),
                maxLogScale = r.double("max_log_scale"),
                mode = if (obj.containsKey("mode")) GrouperMode.fromMetadata(r.string("mode")) else GrouperMode.PAPER,
                refineRounds = if (obj.containsKey("refine_rounds")) r.int("refine_rounds") else 1,
                refineStatistic = if (obj.containsKey("refine_statistic")) {
                    RefineStatistic.fromMetadata(r.string("refine_statistic"))
                } else {
                    RefineStatistic.MEDIAN
                }
            )
        }
    }
}
