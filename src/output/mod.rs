//! Outputs: the result file document and its atomic writer, the text report, the progress
//! display. Pure serializers of probe/stats values, plus the edges that write them.
