package org.bbemobile.demo

import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.Button
import android.widget.Spinner
import androidx.appcompat.app.AppCompatActivity
import androidx.fragment.app.Fragment
import androidx.fragment.app.commit

/**
 * Single activity: a row of tabs (camera, gallery, benchmark), the accelerator choice (CPU / GPU / NNAPI),
 * and the current screen's fragment below.
 */
class MainActivity : AppCompatActivity() {
    /** Accelerator chosen in the spinner; screens read it when they (re)create their segmenter. */
    var accelerator: BbeSegmenter.Accelerator = BbeSegmenter.Accelerator.CPU
        private set

    private var current = TAB_CAMERA

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        if (savedInstanceState != null) {
            current = savedInstanceState.getInt(KEY_TAB, TAB_CAMERA)
            accelerator = BbeSegmenter.Accelerator.values()[savedInstanceState.getInt(KEY_ACCEL, 0)]
        }
        findViewById<Button>(R.id.tab_camera).setOnClickListener { show(TAB_CAMERA) }
        findViewById<Button>(R.id.tab_gallery).setOnClickListener { show(TAB_GALLERY) }
        findViewById<Button>(R.id.tab_benchmark).setOnClickListener { show(TAB_BENCHMARK) }
        val spinner = findViewById<Spinner>(R.id.accelerator)
        spinner.setSelection(accelerator.ordinal)
        spinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                val chosen = BbeSegmenter.Accelerator.values()[position]
                if (chosen != accelerator) {
                    accelerator = chosen
                    show(current) // recreate the screen with the new accelerator
                }
            }

            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        if (savedInstanceState == null) show(current)
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putInt(KEY_TAB, current)
        outState.putInt(KEY_ACCEL, accelerator.ordinal)
    }

    private fun show(tab: Int) {
        current = tab
        val fragment: Fragment = when (tab) {
            TAB_GALLERY -> GalleryFragment()
            TAB_BENCHMARK -> BenchmarkFragment()
            else -> CameraFragment()
        }
        supportFragmentManager.commit { replace(R.id.container, fragment) }
    }

    private companion object {
        const val TAB_CAMERA = 0
        const val TAB_GALLERY = 1
        const val TAB_BENCHMARK = 2
        const val KEY_TAB = "tab"
        const val KEY_ACCEL = "accelerator"
    }
}
