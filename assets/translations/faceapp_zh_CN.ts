<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AboutDialog</name>
    <message>
        <source>licence</source>
        <translation>许可证</translation>
    </message>
    <message>
        <source>Face detector</source>
        <translation>人脸检测</translation>
    </message>
    <message>
        <source>Liveness check</source>
        <translation>活体检测</translation>
    </message>
    <message>
        <source>Face embedding</source>
        <translation>人脸特征</translation>
    </message>
    <message>
        <source>Runs on</source>
        <translation>运行于</translation>
    </message>
    <message>
        <source>Gallery</source>
        <translation>人脸库</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Model cache</source>
        <translation>模型缓存</translation>
    </message>
    <message>
        <source>Real-time face recognition on your own computer. Everything runs offline: no face, name or photo leaves this machine.</source>
        <translation>在你自己的电脑上实时识别人脸。一切都离线运行：人脸、姓名和照片都不会离开这台电脑。</translation>
    </message>
    <message>
        <source>FaceApp is free software under the Apache-2.0 licence; the licences of the models are in the models folder.</source>
        <translation>FaceApp 是采用 Apache-2.0 许可证的自由软件；各模型的许可证见 models 文件夹。</translation>
    </message>
    <message>
        <source>About FaceApp</source>
        <translation>关于 FaceApp</translation>
    </message>
</context>
<context>
    <name>Alerts</name>
    <message>
        <source>{label} appeared ({source})</source>
        <translation>{label} 出现了（{source}）</translation>
    </message>
</context>
<context>
    <name>Challenge</name>
    <message>
        <source>look straight at the camera</source>
        <extracomment>The head-turn challenge&apos;s prompts (faceapp.recognition.challenge).</extracomment>
        <translation>请直视摄像头</translation>
    </message>
    <message>
        <source>turn your head to your left</source>
        <translation>请把头转向您的左边</translation>
    </message>
    <message>
        <source>turn your head to your right</source>
        <translation>请把头转向您的右边</translation>
    </message>
</context>
<context>
    <name>DecisionControls</name>
    <message>
        <source>Strict</source>
        <translation>严格</translation>
    </message>
    <message>
        <source>Balanced</source>
        <translation>均衡</translation>
    </message>
    <message>
        <source>Lenient</source>
        <translation>宽松</translation>
    </message>
    <message>
        <source>{name} (target: {share} of strangers named)</source>
        <translation>{name}（目标：{share} 的陌生人被命名）</translation>
    </message>
    <message>
        <source>Fixed threshold {value}</source>
        <translation>固定阈值 {value}</translation>
    </message>
    <message>
        <source>Names</source>
        <translation>命名</translation>
    </message>
    <message>
        <source>Fixed threshold</source>
        <translation>固定阈值</translation>
    </message>
    <message>
        <source>When a face is named: a preset allows a share of strangers&apos; faces to be named (in brackets), whatever the number of people enrolled; or one fixed similarity threshold</source>
        <translation>何时为人脸命名：预设限定陌生人脸被命名的比例（括号内），与已登记人数无关；或使用一个固定的相似度阈值</translation>
    </message>
    <message>
        <source>The threshold {preset} chooses for this gallery; type a value to fix it</source>
        <translation>{preset} 为此图库选择的阈值；输入数值可将其固定</translation>
    </message>
    <message>
        <source>The threshold {preset} chooses for this gallery is shown from the next frame on</source>
        <translation>{preset} 为此图库选择的阈值将从下一帧起显示</translation>
    </message>
    <message>
        <source>Cosine similarity needed to name a face</source>
        <translation>为人脸命名所需的余弦相似度</translation>
    </message>
</context>
<context>
    <name>Docks</name>
    <message>
        <source>In view</source>
        <translation>画面中</translation>
    </message>
    <message>
        <source>Unknown #{number}</source>
        <translation>未知 #{number}</translation>
    </message>
    <message>
        <source>Unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>since {time}</source>
        <translation>自 {time} 起</translation>
    </message>
    <message>
        <source>Timeline</source>
        <translation>时间线</translation>
    </message>
    <message>
        <source>Everyone</source>
        <translation>所有人</translation>
    </message>
    <message>
        <source>{frames} frame(s)</source>
        <translation>{frames} 帧</translation>
    </message>
    <message>
        <source>Unknown visitors</source>
        <translation>未知访客</translation>
    </message>
    <message>
        <source>Name…</source>
        <translation>命名…</translation>
    </message>
    <message>
        <source>Merge…</source>
        <translation>合并…</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>忽略</translation>
    </message>
    <message>
        <source>Unknown #{number}: {count} sighting(s), last {last}</source>
        <translation>未知 #{number}：{count} 次出现，最近 {last}</translation>
    </message>
    <message>
        <source>Name Unknown #{number}</source>
        <translation>为未知 #{number} 命名</translation>
    </message>
    <message>
        <source>Who is this?</source>
        <translation>这是谁？</translation>
    </message>
    <message>
        <source>Unknown #{number} is {name} now.</source>
        <translation>未知 #{number} 现在是 {name}。</translation>
    </message>
    <message>
        <source>Merge Unknown #{number}</source>
        <translation>合并未知 #{number}</translation>
    </message>
    <message>
        <source>The same person as:</source>
        <translation>与此人相同：</translation>
    </message>
    <message>
        <source>Unknown #{number} merged into #{into}.</source>
        <translation>未知 #{number} 已合并到 #{into}。</translation>
    </message>
    <message>
        <source>Dismiss Unknown #{number}</source>
        <translation>忽略未知 #{number}</translation>
    </message>
    <message>
        <source>Forget Unknown #{number}, with their sightings and crops?</source>
        <translation>忘记未知 #{number} 及其出现记录和人脸截图？</translation>
    </message>
    <message>
        <source>Unknown #{number} forgotten.</source>
        <translation>已忘记未知 #{number}。</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>Not {name}</source>
        <translation>不是 {name}</translation>
    </message>
    <message>
        <source>This is…</source>
        <translation>这是…</translation>
    </message>
    <message>
        <source>Stored: that face is not {name}.</source>
        <translation>已保存：那张人脸不是 {name}。</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名字</translation>
    </message>
    <message>
        <source>That sighting is {name} now.</source>
        <translation>那次出现现在归于 {name}。</translation>
    </message>
</context>
<context>
    <name>EnrollDialog</name>
    <message>
        <source>No camera picture: choose a working source in the main window, or use “Add from photos”.</source>
        <translation>没有摄像头画面：请在主窗口选择一个可用的视频源，或使用“从照片添加”。</translation>
    </message>
    <message>
        <source>Enroll from the camera</source>
        <translation>从摄像头登记</translation>
    </message>
    <message>
        <source>the person&apos;s name</source>
        <translation>此人的姓名</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Samples</source>
        <translation>样本数</translation>
    </message>
    <message>
        <source>Type a name, look at the camera, then press “Start capture”.</source>
        <translation>输入姓名，看向摄像头，然后点击“开始采集”。</translation>
    </message>
    <message>
        <source>Start capture</source>
        <translation>开始采集</translation>
    </message>
    <message>
        <source>Retake selected</source>
        <translation>重拍所选</translation>
    </message>
    <message>
        <source>Save</source>
        <translation>保存</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Capture paused.</source>
        <translation>采集已暂停。</translation>
    </message>
    <message>
        <source>All samples are taken: select one and press “Retake selected”, or Save.</source>
        <translation>样本已全部采集：选中一个后点击“重拍所选”，或者保存。</translation>
    </message>
    <message>
        <source>Capturing sample {number} of {total}: look at the camera.</source>
        <translation>正在采集第 {number}/{total} 个样本：请看向摄像头。</translation>
    </message>
    <message>
        <source>Pose {step} of {steps}: view {taken} of {needed}</source>
        <translation>姿势 {step}/{steps}：第 {taken}/{needed} 张</translation>
    </message>
    <message>
        <source>Last step, a liveness check: follow the instruction above within {seconds:g} s.</source>
        <translation>最后一步，活体检测：请在 {seconds:g} 秒内按上面的提示做。</translation>
    </message>
    <message>
        <source>✓ live</source>
        <translation>✓ 真人</translation>
    </message>
    <message>
        <source>Liveness check passed. Save, or select a sample and retake it.</source>
        <translation>活体检测已通过。请保存，或选中一个样本重新拍摄。</translation>
    </message>
    <message>
        <source>✗ liveness check failed</source>
        <translation>✗ 活体检测未通过</translation>
    </message>
    <message>
        <source>Liveness check failed ({reason}). Press “Check again” to retry.</source>
        <translation>活体检测未通过（{reason}）。请按“重新检测”再试。</translation>
    </message>
    <message>
        <source>Sample {number} of {total}: {problem}</source>
        <translation>第 {number}/{total} 个样本：{problem}</translation>
    </message>
    <message>
        <source>All {total} samples taken. Save, or select one and retake it.</source>
        <translation>{total} 个样本已全部采集。请保存，或选中一个重拍。</translation>
    </message>
    <message>
        <source>Sample {number} of {total} taken; move your head a little for the next one.</source>
        <translation>已采集第 {number}/{total} 个样本；下一个请稍微转动一下头部。</translation>
    </message>
    <message>
        <source>quality {score:.2f}</source>
        <translation>质量 {score:.2f}</translation>
    </message>
    <message>
        <source>not taken yet</source>
        <translation>尚未采集</translation>
    </message>
    <message>
        <source>Stop capture</source>
        <translation>停止采集</translation>
    </message>
    <message>
        <source>Check again</source>
        <translation>重新检测</translation>
    </message>
    <message>
        <source>Take all the samples first.</source>
        <translation>请先采集全部样本。</translation>
    </message>
    <message>
        <source>The liveness check has not passed yet.</source>
        <translation>活体检测尚未通过。</translation>
    </message>
    <message>
        <source>Not saved. Change the name, or press Save again.</source>
        <translation>未保存。请修改姓名，或再次点击保存。</translation>
    </message>
</context>
<context>
    <name>FaceMenu</name>
    <message>
        <source>Not {name}</source>
        <translation>不是 {name}</translation>
    </message>
    <message>
        <source>Name this person…</source>
        <translation>为此人命名…</translation>
    </message>
    <message>
        <source>Name this person</source>
        <translation>为此人命名</translation>
    </message>
    <message>
        <source>Who is Unknown #{number}?</source>
        <translation>未知 #{number} 是谁？</translation>
    </message>
    <message>
        <source>This face has not been recognised yet; try again in a moment.</source>
        <translation>尚未识别此人脸，请稍后再试。</translation>
    </message>
    <message>
        <source>Not {name}?</source>
        <translation>不是 {name}？</translation>
    </message>
    <message>
        <source>This face looks like {name} themselves ({why}). Store it as not {name} anyway?</source>
        <translation>此人脸看起来就是 {name} 本人（{why}）。仍要将其保存为“不是 {name}”吗？</translation>
    </message>
    <message>
        <source>Stored: this face is not {name} ({count} face(s) marked so far).</source>
        <translation>已保存：此人脸不是 {name}（目前已标记 {count} 张人脸）。</translation>
    </message>
    <message>
        <source>Could not store the face as not {name}: {error}</source>
        <translation>无法将此人脸保存为“不是 {name}”：{error}</translation>
    </message>
</context>
<context>
    <name>GalleryDialog</name>
    <message>
        <source>Encrypt with a passphrase</source>
        <extracomment>Item data role holding the initials drawn instead of a thumbnail (&quot;&quot; when a thumbnail is shown).</extracomment>
        <translation>用口令加密</translation>
    </message>
    <message>
        <source>Export without encryption</source>
        <translation>不加密导出</translation>
    </message>
    <message>
        <source>Gallery — {path}</source>
        <translation>人脸库 — {path}</translation>
    </message>
    <message>
        <source>Filter by name</source>
        <translation>按姓名筛选</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>姓名</translation>
    </message>
    <message>
        <source>Templates</source>
        <translation>模板</translation>
    </message>
    <message>
        <source>Added</source>
        <translation>添加时间</translation>
    </message>
    <message>
        <source>Last seen</source>
        <translation>最近出现</translation>
    </message>
    <message>
        <source>Delete template</source>
        <translation>删除模板</translation>
    </message>
    <message>
        <source>Rename…</source>
        <translation>重命名…</translation>
    </message>
    <message>
        <source>Merge into…</source>
        <translation>合并到…</translation>
    </message>
    <message>
        <source>Delete…</source>
        <translation>删除…</translation>
    </message>
    <message>
        <source>Add photos…</source>
        <translation>添加照片…</translation>
    </message>
    <message>
        <source>Import…</source>
        <translation>导入…</translation>
    </message>
    <message>
        <source>Export…</source>
        <translation>导出…</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>never</source>
        <translation>从未</translation>
    </message>
    <message>
        <source>Templates of {name}</source>
        <translation>{name} 的模板</translation>
    </message>
    <message>
        <source>Templates (select a person)</source>
        <translation>模板（请选择一个人）</translation>
    </message>
    <message>
        <source>not them</source>
        <translation>非本人</translation>
    </message>
    <message>
        <source>from {source}; quality {quality:.2f}</source>
        <translation>来自 {source}；质量 {quality:.2f}</translation>
    </message>
    <message>
        <source>unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>Not {name}: a face that is not given this name; </source>
        <translation>不是 {name}：不会被赋予此名字的人脸；</translation>
    </message>
    <message>
        <source>Please wait: the last change is still being made.</source>
        <translation>请稍候：上一个修改还在进行中。</translation>
    </message>
    <message>
        <source>Working…</source>
        <translation>处理中…</translation>
    </message>
    <message>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <source>New name for &apos;{name}&apos;:</source>
        <translation>“{name}”的新名字：</translation>
    </message>
    <message>
        <source>renamed &apos;{old}&apos; to &apos;{new}&apos;</source>
        <translation>已将“{old}”重命名为“{new}”</translation>
    </message>
    <message>
        <source>Merge</source>
        <translation>合并</translation>
    </message>
    <message>
        <source>Move all templates of &apos;{name}&apos; to:</source>
        <translation>把“{name}”的全部模板移到：</translation>
    </message>
    <message>
        <source>Merge &apos;{name}&apos; into &apos;{target}&apos;? &apos;{name}&apos; will be removed.</source>
        <translation>把“{name}”合并到“{target}”？“{name}”将被删除。</translation>
    </message>
    <message>
        <source>merged &apos;{name}&apos; into &apos;{target}&apos;</source>
        <translation>已把“{name}”合并到“{target}”</translation>
    </message>
    <message>
        <source>Delete &apos;{name}&apos; and their {count} template(s)? This cannot be undone.</source>
        <translation>删除“{name}”及其 {count} 个模板？此操作无法撤销。</translation>
    </message>
    <message>
        <source>Delete person</source>
        <translation>删除人员</translation>
    </message>
    <message>
        <source>deleted &apos;{name}&apos;</source>
        <translation>已删除“{name}”</translation>
    </message>
    <message>
        <source>1 template</source>
        <translation>1 个模板</translation>
    </message>
    <message>
        <source>{count} templates</source>
        <translation>{count} 个模板</translation>
    </message>
    <message>
        <source>Delete templates</source>
        <translation>删除模板</translation>
    </message>
    <message>
        <source>Delete {count} of &apos;{name}&apos;?</source>
        <translation>删除“{name}”的 {count}？</translation>
    </message>
    <message>
        <source>deleted {count} of &apos;{name}&apos;</source>
        <translation>已删除“{name}”的 {count}</translation>
    </message>
    <message>
        <source>Export the gallery</source>
        <translation>导出人脸库</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Encrypt the exported file? Anyone with the file can read an unencrypted export.</source>
        <translation>要加密导出的文件吗？未加密的导出文件，任何拿到它的人都能读取。</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Encrypt the export</source>
        <translation>加密导出文件</translation>
    </message>
    <message>
        <source>Passphrase for the exported file</source>
        <translation>导出文件的口令</translation>
    </message>
    <message>
        <source>exported {count} people to {path} (encrypted)</source>
        <translation>已将 {count} 人导出到 {path}（已加密）</translation>
    </message>
    <message>
        <source>exported {count} people to {path}</source>
        <translation>已将 {count} 人导出到 {path}</translation>
    </message>
    <message>
        <source>Import a gallery</source>
        <translation>导入人脸库</translation>
    </message>
    <message>
        <source>Merge their templates</source>
        <translation>合并其模板</translation>
    </message>
    <message>
        <source>Skip that person</source>
        <translation>跳过此人</translation>
    </message>
    <message>
        <source>Import</source>
        <translation>导入</translation>
    </message>
    <message>
        <source>When a name in the file is already in the gallery:</source>
        <translation>当文件中的姓名已在人脸库中时：</translation>
    </message>
    <message>
        <source>This file is encrypted. Passphrase:</source>
        <translation>此文件已加密。口令：</translation>
    </message>
    <message>
        <source>imported {added} new people, merged {merged}, skipped {skipped}; {templates} template(s) added</source>
        <translation>导入新人员 {added} 人，合并 {merged} 人，跳过 {skipped} 人；新增 {templates} 个模板</translation>
    </message>
    <message>
        <source>Wrong passphrase.</source>
        <translation>口令错误。</translation>
    </message>
    <message>
        <source>The passphrase cannot be empty.</source>
        <translation>口令不能为空。</translation>
    </message>
    <message>
        <source>{problem} Nothing was imported.</source>
        <translation>{problem}未导入任何内容。</translation>
    </message>
    <message>
        <source>{name} has the automatic threshold again.</source>
        <translation>{name} 已恢复自动阈值。</translation>
    </message>
    <message>
        <source>{name} is named only at a similarity of {value} or more.</source>
        <translation>仅当相似度达到 {value} 或以上时才命名 {name}。</translation>
    </message>
</context>
<context>
    <name>GalleryStatus</name>
    <message>
        <source>Gallery server: {problem}</source>
        <translation>人脸库服务器：{problem}</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Choose a source…</source>
        <translation>选择视频源…</translation>
    </message>
    <message>
        <source>Try again</source>
        <translation>重试</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <source>no source</source>
        <translation>没有视频源</translation>
    </message>
    <message>
        <source>Main</source>
        <translation>主工具栏</translation>
    </message>
    <message>
        <source>Source…</source>
        <translation>视频源…</translation>
    </message>
    <message>
        <source>Choose a webcam, video file, stream or image folder</source>
        <translation>选择摄像头、视频文件、视频流或图片文件夹</translation>
    </message>
    <message>
        <source>Reopen</source>
        <translation>重新打开</translation>
    </message>
    <message>
        <source>Open the source again</source>
        <translation>再次打开视频源</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>暂停</translation>
    </message>
    <message>
        <source>Freeze the picture</source>
        <translation>冻结画面</translation>
    </message>
    <message>
        <source>Snapshot</source>
        <translation>截图</translation>
    </message>
    <message>
        <source>Save the picture with its boxes and names</source>
        <translation>保存带有人脸框和姓名的画面</translation>
    </message>
    <message>
        <source>Loop video</source>
        <translation>循环播放</translation>
    </message>
    <message>
        <source>Play a video file or folder again when it ends</source>
        <translation>视频文件或文件夹播完后重新播放</translation>
    </message>
    <message>
        <source>Enroll…</source>
        <translation>登记…</translation>
    </message>
    <message>
        <source>Enroll someone from the camera</source>
        <translation>从摄像头登记一个人</translation>
    </message>
    <message>
        <source>Add from photos…</source>
        <translation>从照片添加…</translation>
    </message>
    <message>
        <source>Enroll someone from photo files</source>
        <translation>从照片文件登记一个人</translation>
    </message>
    <message>
        <source>Gallery…</source>
        <translation>人脸库…</translation>
    </message>
    <message>
        <source>Manage the enrolled people</source>
        <translation>管理已登记的人</translation>
    </message>
    <message>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <source>Camera, recognition, privacy, gallery and language</source>
        <translation>摄像头、识别、隐私、人脸库和语言</translation>
    </message>
    <message>
        <source>About FaceApp</source>
        <translation>关于 FaceApp</translation>
    </message>
    <message>
        <source>The gallery was encrypted, decrypted or given a new passphrase by another program: choose Privacy ▸ Reopen the gallery… to open it again.</source>
        <translation>另一个程序对人脸库进行了加密、解密或更换了口令：请选择“隐私 ▸ 重新打开人脸库…”再次打开它。</translation>
    </message>
    <message>
        <source>Opening {source}…</source>
        <translation>正在打开 {source}…</translation>
    </message>
    <message>
        <source>Choose a webcam, a video file, a stream URL or an image folder.</source>
        <translation>请选择摄像头、视频文件、视频流地址或图片文件夹。</translation>
    </message>
    <message>
        <source>reconnecting…</source>
        <translation>正在重新连接…</translation>
    </message>
    <message>
        <source>{message}: Reopen (Ctrl+R) plays it again; “Loop video” repeats it</source>
        <translation>{message}：“重新打开”（Ctrl+R）可再次播放；“循环播放”会自动重复</translation>
    </message>
    <message>
        <source>Paused</source>
        <translation>已暂停</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>继续</translation>
    </message>
</context>
<context>
    <name>Passphrase</name>
    <message>
        <source>the keyring</source>
        <extracomment>In the desktop app an operation waits this long for a server gallery it cannot reach (the status bar says why), rather than the command line&apos;s 10 s.</extracomment>
        <translation>系统钥匙串</translation>
    </message>
    <message>
        <source>The passphrase from {source} is wrong.</source>
        <translation>来自{source}的口令不正确。</translation>
    </message>
    <message>
        <source>The gallery {name} is encrypted. Passphrase:</source>
        <translation>人脸库 {name} 已加密。口令：</translation>
    </message>
    <message>
        <source>Unlock the gallery</source>
        <translation>解锁人脸库</translation>
    </message>
    <message>
        <source>The passphrase cannot be empty.</source>
        <translation>口令不能为空。</translation>
    </message>
    <message>
        <source>Wrong passphrase.</source>
        <translation>口令错误。</translation>
    </message>
    <message>
        <source>Remember the passphrase</source>
        <translation>记住口令</translation>
    </message>
    <message>
        <source>Remember this gallery&apos;s passphrase in the system keyring?</source>
        <translation>要把这个人脸库的口令保存在系统钥匙串中吗？</translation>
    </message>
    <message>
        <source>New passphrase</source>
        <translation>新口令</translation>
    </message>
    <message>
        <source>{what}:</source>
        <translation>{what}：</translation>
    </message>
    <message>
        <source>the passphrase cannot be empty</source>
        <translation>口令不能为空</translation>
    </message>
    <message>
        <source>{what} again, to be sure:</source>
        <translation>请再输入一次{what}，以便确认：</translation>
    </message>
    <message>
        <source>the two passphrases differ; nothing was changed</source>
        <translation>两次输入的口令不一致；未做任何修改</translation>
    </message>
</context>
<context>
    <name>PhotosDialog</name>
    <message>
        <source>Add from photos</source>
        <translation>从照片添加</translation>
    </message>
    <message>
        <source>a new name, or choose someone enrolled</source>
        <translation>输入新姓名，或选择已登记的人</translation>
    </message>
    <message>
        <source>Choose photos…</source>
        <translation>选择照片…</translation>
    </message>
    <message>
        <source>Add</source>
        <translation>添加</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>One face per photo; the person alone.</source>
        <translation>每张照片一张人脸；照片中只有此人。</translation>
    </message>
    <message>
        <source>Person</source>
        <translation>人员</translation>
    </message>
    <message>
        <source>Choose photos of this person</source>
        <translation>选择此人的照片</translation>
    </message>
    <message>
        <source>Choose one or more photos first.</source>
        <translation>请先选择一张或多张照片。</translation>
    </message>
    <message>
        <source>Reading 1 photo…</source>
        <translation>正在读取 1 张照片…</translation>
    </message>
    <message>
        <source>Reading {count} photos…</source>
        <translation>正在读取 {count} 张照片…</translation>
    </message>
    <message>
        <source>Not saved.</source>
        <translation>未保存。</translation>
    </message>
</context>
<context>
    <name>Poses</name>
    <message>
        <source>look straight at the camera</source>
        <extracomment>The pose-diverse capture&apos;s instructions (faceapp.recognition.enroll_poses).</extracomment>
        <translation>请正视摄像头</translation>
    </message>
    <message>
        <source>turn your head a little to your left</source>
        <translation>请把头稍微转向您的左边</translation>
    </message>
    <message>
        <source>turn your head a little to your right</source>
        <translation>请把头稍微转向您的右边</translation>
    </message>
</context>
<context>
    <name>Preferences</name>
    <message>
        <source>The language changes when FaceApp starts again.</source>
        <translation>界面语言将在 FaceApp 下次启动时更改。</translation>
    </message>
</context>
<context>
    <name>PrivacyMenu</name>
    <message>
        <source>No faces</source>
        <translation>不模糊</translation>
    </message>
    <message>
        <source>Unknown faces</source>
        <translation>未知人脸</translation>
    </message>
    <message>
        <source>All faces</source>
        <translation>所有人脸</translation>
    </message>
    <message>
        <source>&amp;Privacy</source>
        <translation>隐私(&amp;P)</translation>
    </message>
    <message>
        <source>Embeddings only (no face thumbnails)</source>
        <translation>仅保存特征（不保存人脸缩略图）</translation>
    </message>
    <message>
        <source>Store only embeddings: thumbnails are deleted and never saved again</source>
        <translation>只保存特征向量：缩略图会被删除，且以后不再保存</translation>
    </message>
    <message>
        <source>Encrypt the gallery…</source>
        <translation>加密人脸库…</translation>
    </message>
    <message>
        <source>Change the passphrase…</source>
        <translation>更改口令…</translation>
    </message>
    <message>
        <source>Decrypt the gallery…</source>
        <translation>解密人脸库…</translation>
    </message>
    <message>
        <source>Reopen the gallery…</source>
        <translation>重新打开人脸库…</translation>
    </message>
    <message>
        <source>Blur in snapshots</source>
        <translation>截图中模糊</translation>
    </message>
    <message>
        <source>Snapshots blur: {faces}.</source>
        <translation>截图模糊：{faces}。</translation>
    </message>
    <message>
        <source>Embeddings only</source>
        <translation>仅保存特征</translation>
    </message>
    <message>
        <source>Store only embeddings from now on? Every face thumbnail in the gallery will be deleted (this cannot be undone); recognition keeps working and the gallery shows initials.</source>
        <translation>从现在起只保存特征向量？人脸库中的所有人脸缩略图都将被删除（无法撤销）；识别照常进行，人脸库改为显示姓名首字母。</translation>
    </message>
    <message>
        <source>Embeddings-only mode is on: {count} thumbnail(s) deleted.</source>
        <translation>已开启仅保存特征模式：删除了 {count} 张缩略图。</translation>
    </message>
    <message>
        <source>Embeddings-only mode is off.</source>
        <translation>已关闭仅保存特征模式。</translation>
    </message>
    <message>
        <source>Deleting every thumbnail</source>
        <translation>正在删除所有缩略图</translation>
    </message>
    <message>
        <source>Turning embeddings-only mode off</source>
        <translation>正在关闭仅保存特征模式</translation>
    </message>
    <message>
        <source>{task}…</source>
        <translation>{task}…</translation>
    </message>
    <message>
        <source>{task}: done.</source>
        <translation>{task}：完成。</translation>
    </message>
    <message>
        <source>wrong passphrase; nothing was changed</source>
        <translation>口令错误；未做任何修改</translation>
    </message>
    <message>
        <source>{task} failed: {reason}</source>
        <translation>{task}失败：{reason}</translation>
    </message>
    <message>
        <source>Encrypt the gallery</source>
        <translation>加密人脸库</translation>
    </message>
    <message>
        <source>Passphrase for the gallery</source>
        <translation>人脸库口令</translation>
    </message>
    <message>
        <source>The gallery is encrypted. Keep the passphrase safe: without it the gallery cannot be opened.</source>
        <translation>人脸库已加密。请妥善保管口令：没有它将无法打开人脸库。</translation>
    </message>
    <message>
        <source>Encrypting the gallery</source>
        <translation>正在加密人脸库</translation>
    </message>
    <message>
        <source>Change the passphrase</source>
        <translation>更改口令</translation>
    </message>
    <message>
        <source>Current passphrase:</source>
        <translation>当前口令：</translation>
    </message>
    <message>
        <source>The gallery&apos;s passphrase is changed.</source>
        <translation>人脸库的口令已更改。</translation>
    </message>
    <message>
        <source>Changing the passphrase</source>
        <translation>正在更改口令</translation>
    </message>
    <message>
        <source>Decrypt the gallery</source>
        <translation>解密人脸库</translation>
    </message>
    <message>
        <source>Current passphrase (the gallery will be stored unencrypted):</source>
        <translation>当前口令（人脸库将以未加密形式保存）：</translation>
    </message>
    <message>
        <source>The gallery is decrypted: it is stored unencrypted now.</source>
        <translation>人脸库已解密：现在以未加密形式保存。</translation>
    </message>
    <message>
        <source>Decrypting the gallery</source>
        <translation>正在解密人脸库</translation>
    </message>
    <message>
        <source>The gallery was opened again.</source>
        <translation>已重新打开人脸库。</translation>
    </message>
    <message>
        <source>Now using the gallery {path}.</source>
        <translation>现在使用人脸库 {path}。</translation>
    </message>
    <message>
        <source>Opening the gallery</source>
        <translation>打开人脸库</translation>
    </message>
    <message>
        <source>Opening the gallery…</source>
        <translation>正在打开人脸库…</translation>
    </message>
</context>
<context>
    <name>Quality</name>
    <message>
        <source>move closer</source>
        <extracomment>The core&apos;s words for what is wrong with a sample (faceapp.vision.quality, faceapp.recognition.enrollment).</extracomment>
        <translation>请靠近一些</translation>
    </message>
    <message>
        <source>too dark</source>
        <translation>太暗</translation>
    </message>
    <message>
        <source>too bright</source>
        <translation>太亮</translation>
    </message>
    <message>
        <source>hold still (image is blurred)</source>
        <translation>请保持不动（画面模糊）</translation>
    </message>
    <message>
        <source>turn to the camera</source>
        <translation>请正对摄像头</translation>
    </message>
    <message>
        <source>no face in view</source>
        <translation>画面中没有人脸</translation>
    </message>
    <message>
        <source>one person at a time, please</source>
        <translation>请一次只出现一个人</translation>
    </message>
    <message>
        <source>this looks like a photo or a screen, not a live face</source>
        <translation>这看起来像照片或屏幕，不是真人</translation>
    </message>
    <message>
        <source>look straight at the camera</source>
        <translation>请正视摄像头</translation>
    </message>
    <message>
        <source>turn a little more to your left</source>
        <translation>再向左转一点</translation>
    </message>
    <message>
        <source>turn a little more to your right</source>
        <translation>再向右转一点</translation>
    </message>
    <message>
        <source>not so far: turn back a little</source>
        <translation>转得太多了：请稍微转回来</translation>
    </message>
</context>
<context>
    <name>Saving</name>
    <message>
        <source>1 sample</source>
        <translation>1 个样本</translation>
    </message>
    <message>
        <source>{count} samples</source>
        <translation>{count} 个样本</translation>
    </message>
    <message>
        <source>Add to &apos;{name}&apos;</source>
        <translation>添加到“{name}”</translation>
    </message>
    <message>
        <source>&apos;{name}&apos; is already in the gallery. Add these {count} to &apos;{name}&apos;?</source>
        <translation>“{name}”已在人脸库中。要把这 {count} 添加到“{name}”吗？</translation>
    </message>
    <message>
        <source>Already enrolled</source>
        <translation>已登记</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>added {count} to &apos;{name}&apos; (now {total})</source>
        <translation>已为“{name}”添加 {count}（现共 {total} 个）</translation>
    </message>
    <message>
        <source>Create &apos;{name}&apos; anyway</source>
        <translation>仍然新建“{name}”</translation>
    </message>
    <message>
        <source>This face matches &apos;{similar}&apos; in the gallery. Add these {count} to &apos;{similar}&apos;, or create &apos;{name}&apos; anyway?</source>
        <translation>这张脸与人脸库中的“{similar}”相符。要把这 {count} 添加到“{similar}”，还是仍然新建“{name}”？</translation>
    </message>
    <message>
        <source>Already enrolled?</source>
        <translation>已经登记过？</translation>
    </message>
    <message>
        <source>enrolled &apos;{name}&apos; with {count}</source>
        <translation>已用 {count} 登记“{name}”</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Camera {index}</source>
        <translation>摄像头 {index}</translation>
    </message>
    <message>
        <source>The camera&apos;s own</source>
        <translation>摄像头默认</translation>
    </message>
    <message>
        <source>When a face is named: each preset allows a share of strangers&apos; faces to be named, whatever the number of people enrolled (type a fixed threshold in the toolbar)</source>
        <translation>何时为人脸命名：每个预设限定陌生人脸被命名的比例，与已登记人数无关（可在工具栏中输入固定阈值）</translation>
    </message>
    <message>
        <source> px</source>
        <translation> 像素</translation>
    </message>
    <message>
        <source>Faces smaller than this, in pixels, are ignored</source>
        <translation>小于此大小（像素）的人脸将被忽略</translation>
    </message>
    <message>
        <source>Follow faces across frames (steadier names, less work)</source>
        <translation>跨帧跟踪人脸（姓名更稳定，计算量更少）</translation>
    </message>
    <message>
        <source>Show whether each face looks live or like a photo (slower)</source>
        <translation>显示每张脸是真人还是照片（较慢）</translation>
    </message>
    <message>
        <source>Runs the anti-spoofing networks on every face of every frame</source>
        <translation>对每一帧的每张脸运行防伪网络</translation>
    </message>
    <message>
        <source>Embeddings only: store no face images (deletes every thumbnail)</source>
        <translation>仅保存特征：不保存任何人脸图像（会删除所有缩略图）</translation>
    </message>
    <message>
        <source>No faces</source>
        <translation>不模糊</translation>
    </message>
    <message>
        <source>Unknown faces</source>
        <translation>未知人脸</translation>
    </message>
    <message>
        <source>All faces</source>
        <translation>所有人脸</translation>
    </message>
    <message>
        <source>A gallery file, or postgresql://USER@HOST/DATABASE for a gallery shared on a PostgreSQL server (see the README)</source>
        <translation>人脸库文件，或 postgresql://用户@主机/数据库（在 PostgreSQL 服务器上共享的人脸库，见 README）</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>选择…</translation>
    </message>
    <message>
        <source>The system&apos;s</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <source>Applies when FaceApp starts again</source>
        <translation>FaceApp 下次启动时生效</translation>
    </message>
    <message>
        <source>Remember sightings and unknown visitors</source>
        <translation>记住出现记录和未知访客</translation>
    </message>
    <message>
        <source> days</source>
        <translation> 天</translation>
    </message>
    <message>
        <source>for ever</source>
        <translation>永久</translation>
    </message>
    <message>
        <source>Sightings older than this are deleted, with their crops</source>
        <translation>早于此时间的出现记录会连同人脸截图一起删除</translation>
    </message>
    <message>
        <source>Off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Any unknown face</source>
        <translation>任何未知人脸</translation>
    </message>
    <message>
        <source>Anyone enrolled</source>
        <translation>任何已登记的人</translation>
    </message>
    <message>
        <source>Anyone</source>
        <translation>任何人</translation>
    </message>
    <message>
        <source> s</source>
        <translation> 秒</translation>
    </message>
    <message>
        <source>After an alert for someone, stay silent about them this long</source>
        <translation>对某人提醒后，在这段时间内不再提醒此人</translation>
    </message>
    <message>
        <source>Desktop notification</source>
        <translation>桌面通知</translation>
    </message>
    <message>
        <source>Sound</source>
        <translation>声音</translation>
    </message>
    <message>
        <source>a command; it gets the event as JSON on its input</source>
        <translation>一条命令；事件以 JSON 形式传给它的标准输入</translation>
    </message>
    <message>
        <source>any source (or one: webcam 0, a file, a stream URL)</source>
        <translation>任何来源（或指定一个：webcam 0、文件、视频流地址）</translation>
    </message>
    <message>
        <source>Camera</source>
        <translation>摄像头</translation>
    </message>
    <message>
        <source>Webcam</source>
        <translation>摄像头</translation>
    </message>
    <message>
        <source>Capture size</source>
        <translation>采集分辨率</translation>
    </message>
    <message>
        <source>Recognition</source>
        <translation>识别</translation>
    </message>
    <message>
        <source>Names faces</source>
        <translation>命名方式</translation>
    </message>
    <message>
        <source>Minimum face size</source>
        <translation>最小人脸尺寸</translation>
    </message>
    <message>
        <source>Privacy</source>
        <translation>隐私</translation>
    </message>
    <message>
        <source>Blur in snapshots</source>
        <translation>截图中模糊</translation>
    </message>
    <message>
        <source>Keep sightings</source>
        <translation>保留出现记录</translation>
    </message>
    <message>
        <source>Alerts</source>
        <translation>提醒</translation>
    </message>
    <message>
        <source>Alert for</source>
        <translation>提醒对象</translation>
    </message>
    <message>
        <source>Cool-down</source>
        <translation>冷却时间</translation>
    </message>
    <message>
        <source>Only for</source>
        <translation>仅限</translation>
    </message>
    <message>
        <source>Run</source>
        <translation>运行</translation>
    </message>
    <message>
        <source>Gallery and language</source>
        <translation>人脸库与语言</translation>
    </message>
    <message>
        <source>Gallery file</source>
        <translation>人脸库文件</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <source>Gallery file (an existing one, or a new name)</source>
        <translation>人脸库文件（已有的文件，或一个新文件名）</translation>
    </message>
</context>
<context>
    <name>Snapshots</name>
    <message>
        <source>Nothing to save yet: no frame has been shown.</source>
        <translation>还没有可保存的内容：尚未显示任何画面。</translation>
    </message>
    <message>
        <source>Cannot save the snapshot:</source>
        <translation>无法保存截图：</translation>
    </message>
    <message>
        <source>Saved {path}</source>
        <translation>已保存 {path}</translation>
    </message>
</context>
<context>
    <name>SourcePickerDialog</name>
    <message>
        <source>Choose a source</source>
        <translation>选择视频源</translation>
    </message>
    <message>
        <source>Webcam</source>
        <translation>摄像头</translation>
    </message>
    <message>
        <source>Video file</source>
        <translation>视频文件</translation>
    </message>
    <message>
        <source>Stream URL</source>
        <translation>视频流地址</translation>
    </message>
    <message>
        <source>Image folder</source>
        <translation>图片文件夹</translation>
    </message>
    <message>
        <source>index </source>
        <translation>编号 </translation>
    </message>
    <message>
        <source>rtsp://camera.local/stream or http://…</source>
        <translation>rtsp://camera.local/stream 或 http://…</translation>
    </message>
    <message>
        <source>Loop video files and folders (else stop at the end)</source>
        <translation>循环播放视频文件和文件夹（否则播完即停）</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>Open a video file</source>
        <translation>打开视频文件</translation>
    </message>
    <message>
        <source>Choose a folder of images</source>
        <translation>选择图片文件夹</translation>
    </message>
    <message>
        <source>choose a video file</source>
        <translation>请选择一个视频文件</translation>
    </message>
    <message>
        <source>type a stream URL</source>
        <translation>请输入视频流地址</translation>
    </message>
    <message>
        <source>choose an image folder</source>
        <translation>请选择一个图片文件夹</translation>
    </message>
    <message>
        <source>{text}: a stream URL looks like rtsp://host/path or http://host/path</source>
        <translation>{text}：视频流地址形如 rtsp://host/path 或 http://host/path</translation>
    </message>
    <message>
        <source>{text}: not a folder</source>
        <translation>{text}：不是文件夹</translation>
    </message>
    <message>
        <source>{text}: not a file</source>
        <translation>{text}：不是文件</translation>
    </message>
</context>
<context>
    <name>ThresholdField</name>
    <message>
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <source>Let the decision rule choose this person&apos;s threshold for the gallery</source>
        <translation>由判定规则为此人在图库中选择阈值</translation>
    </message>
    <message>
        <source>This person is named only at this cosine similarity or more</source>
        <translation>仅当余弦相似度达到此值或以上时才命名此人</translation>
    </message>
    <message>
        <source>Own threshold</source>
        <translation>个人阈值</translation>
    </message>
</context>
<context>
    <name>VideoView</name>
    <message>
        <source>Unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>poor view</source>
        <translation>画面太差</translation>
    </message>
    <message>
        <source>live</source>
        <translation>真人</translation>
    </message>
    <message>
        <source>photo?</source>
        <translation>照片？</translation>
    </message>
</context>
</TS>
