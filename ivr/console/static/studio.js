// Prompt studio: record a take with the browser's microphone, show its level, let the supervisor
// listen and re-take, then send it through the same upload field as a file (one server path).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-print")) {
      window.print();
    }
  });

  var box = document.getElementById("recorder");
  var form = document.getElementById("take-form");
  if (!box || !form || !navigator.mediaDevices || !window.MediaRecorder) {
    return; // no microphone API: uploading a file still works
  }
  box.hidden = false;
  var start = document.getElementById("record-start");
  var stop = document.getElementById("record-stop");
  var again = document.getElementById("record-again");
  var level = document.getElementById("record-level");
  var clock = document.getElementById("record-time");
  var status = document.getElementById("record-status");
  var preview = document.getElementById("record-preview");
  var fileInput = document.getElementById("take-file");
  var recorder = null, stream = null, audio = null, chunks = [], started = 0, timer = 0, previewUrl = null;

  function say(text) { status.textContent = text; }

  function mimeType() {
    var kinds = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
    for (var i = 0; i < kinds.length; i++) {
      if (MediaRecorder.isTypeSupported(kinds[i])) { return kinds[i]; }
    }
    return "";
  }

  function showLevel(analyser) {
    var samples = new Float32Array(analyser.fftSize);
    function tick() {
      if (!recorder || recorder.state !== "recording") { level.value = 0; return; }
      analyser.getFloatTimeDomainData(samples);
      var peak = 0;
      for (var i = 0; i < samples.length; i++) { peak = Math.max(peak, Math.abs(samples[i])); }
      level.value = peak;
      level.textContent = Math.round(peak * 100) + "%";
      clock.textContent = ((Date.now() - started) / 1000).toFixed(1) + " 秒";
      timer = window.requestAnimationFrame(tick);
    }
    tick();
  }

  function release() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    if (audio) { audio.close(); audio = null; }
    window.cancelAnimationFrame(timer);
  }

  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (s) {
      stream = s;
      audio = new AudioContext();
      var analyser = audio.createAnalyser();
      analyser.fftSize = 1024;
      audio.createMediaStreamSource(stream).connect(analyser);
      var type = mimeType();
      recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
      chunks = [];
      recorder.addEventListener("dataavailable", function (e) { if (e.data.size) { chunks.push(e.data); } });
      recorder.addEventListener("stop", function () {
        release();
        var blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        var ext = /ogg/.test(blob.type) ? "ogg" : /mp4/.test(blob.type) ? "m4a" : "webm";
        var data = new DataTransfer();
        data.items.add(new File([blob], "browser-recording." + ext, { type: blob.type }));
        fileInput.files = data.files;
        if (previewUrl) { URL.revokeObjectURL(previewUrl); }
        previewUrl = URL.createObjectURL(blob);
        preview.src = previewUrl;
        again.disabled = false;
        start.disabled = false;
        stop.disabled = true;
        say("录好了，" + clock.textContent + "。请试听；满意就点“保存这条录音”，不满意点“重录”。");
        preview.focus();
      });
      started = Date.now();
      recorder.start(250);
      start.disabled = true;
      stop.disabled = false;
      again.disabled = true;
      say("正在录音……讲完请点“停止”。");
      stop.focus();
      showLevel(analyser);
    }).catch(function (err) {
      say("打不开麦克风（" + err.name + "）。请允许浏览器使用麦克风，或者上传录音文件。");
    });
  });

  stop.addEventListener("click", function () {
    if (recorder && recorder.state === "recording") { recorder.stop(); }
  });

  again.addEventListener("click", function () {
    fileInput.value = "";
    preview.removeAttribute("src");
    preview.load();
    again.disabled = true;
    clock.textContent = "0.0 秒";
    say("已清掉刚才的录音，可以重新录。");
    start.focus();
  });
}());
